"""Tails `GET /v1/events` so events whose webhooks never arrived still reach `stripe.events` (source=poll).

One `HorizonListing` (`producers.pollers.listing`: tail with `ending_before`, a sweep behind the visibility
horizon now and then, page-by-page publishing with the position saved after each page) per group of at most
20 event types (`types[]`, `producers.pollers.event_types`: only what paysync maps). A crash between a
publish and its save re-publishes one page (at-least-once; the streams deduplicate on event id).
Events about connected accounts joining or leaving (`account.application.*`) are handed to `observers`.

With `delivered` (`producers.pollers.delivered`), a listed event whose id was already *read back* from
`stripe.events` at the same API version (usually the webhook's copy) is not published again; `on_dropped(poller,
n)` counts those copies. They still count as listed for the listing (its idle-tail pacing) and still reach the
observers; the cursor moves
exactly as if they had been published, since they are durable on the topic. When the set is not current, every
listed event is published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from paysync.codec import AvroCodec
from paysync.records import ENVELOPE
from paysync.topics import STRIPE_EVENTS
from producers.cursors import CursorStore
from producers.envelope import NotAnEvent, envelope, rendered_version
from producers.pollers.delivered import DeliveredEvents
from producers.pollers.event_types import type_groups
from producers.pollers.listing import HorizonConfig, HorizonListing, Listed
from producers.publisher import KafkaPublisher
from producers.stripe_api import StripeApi

log = logging.getLogger(__name__)
EventObserver = Callable[[dict[str, Any]], None]
DroppedCounter = Callable[[str, int], None]  # (poller name, copies not published)


class EventsPoller:
    """One account's events (`account=None`: the platform). `poll_once()` returns how many it published."""

    def __init__(self, api: StripeApi, publisher: KafkaPublisher, cursors: CursorStore, *, topic_prefix: str = "",
                 account: str | None = None, horizon: HorizonConfig | None = None,
                 publish_timeout_s: float = 30.0, codec: AvroCodec | None = None,
                 types: tuple[tuple[str, ...], ...] | None = None,
                 observers: tuple[EventObserver, ...] = (), delivered: DeliveredEvents | None = None,
                 on_dropped: DroppedCounter | None = None) -> None:
        self.api, self.publisher, self.cursors = api, publisher, cursors
        self.topic = STRIPE_EVENTS.full_name(topic_prefix)
        self.account = account
        self.name = f"events:{account}" if account else "events"
        self.publish_timeout_s = publish_timeout_s
        self.codec = codec or AvroCodec()
        self.observers = observers
        self.delivered, self.on_dropped = delivered, on_dropped
        self.dropped = 0  # copies not published in the current poll_once
        config = horizon or HorizonConfig()
        groups = type_groups(platform=account is None) if types is None else types
        self.listings = {",".join(g): HorizonListing(api, "/v1/events", {"types": list(g)}, account, config)
                         for g in groups}
        self.state: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self.state is None:
            loaded = self.cursors.load_state(self.name) or {}
            if "lists" not in loaded:  # a cursor of the single-listing poller: every group starts at its position
                loaded = {"lists": {key: {"created": loaded.get("created"), "seen": dict(loaded.get("seen") or {})}
                                    for key in self.listings} if loaded.get("created") else {}}
            loaded.setdefault("lists", {})
            self.state = loaded
        return self.state

    def _save(self) -> None:
        state = self._load()
        created = [s.get("created") for s in state["lists"].values() if s.get("created")]
        self.cursors.save(self.name, state, min(created) if created else None)

    def _publish(self, listed: Listed) -> int:
        """Publish one page's fresh events (less those already on the topic); returns how many it handled."""
        received_at = int(time.time() * 1000)
        batch: list[tuple[str, str, bytes]] = []
        ordered = sorted(listed, key=lambda item: int(item[0].get("created") or 0))
        on_topic = self.delivered.already_on_topic(
            (str(o.get("id")), rendered_version(o)) for o, _ in ordered) if self.delivered else set()
        for obj, raw in ordered:
            if str(obj.get("id")) in on_topic:
                for observe in self.observers:
                    observe(obj)
                continue
            try:
                key, record = envelope(obj, raw, "poll", received_at, exact=True)  # raw: compact_json(obj)
            except NotAnEvent as exc:
                log.warning("listed object is not an event", extra={"event_id": obj.get("id"), "error": str(exc)})
                continue
            if record["account"] is None:
                record["account"] = self.account
            batch.append((self.topic, key, self.codec.encode_record(ENVELOPE, record)))
            for observe in self.observers:
                observe(obj)
        published = self.publisher.publish_many_sync(batch, self.publish_timeout_s)
        if on_topic:
            self.dropped += len(on_topic)
            if self.on_dropped is not None:
                self.on_dropped(self.name, len(on_topic))
        return published + len(on_topic)

    def poll_once(self, now: float | None = None) -> int:
        """Poll every type group once; a group whose call fails raises after the others kept their pages.

        Returns the events published: those listed, less the copies already on the topic (`dropped`)."""
        state = self._load()
        now = time.time() if now is None else now
        self.dropped = 0
        published = 0
        failure: Exception | None = None
        for key, listing in self.listings.items():
            sub = state["lists"].setdefault(key, {})
            try:
                published += listing.poll(sub, now, self._publish, self._save)
            except Exception as exc:  # noqa: BLE001 - re-raised below, once every group had its turn
                failure = failure or exc
        if failure is not None:
            raise failure
        return published - self.dropped

    @property
    def more(self) -> bool:
        """A listing stopped at its page budget: poll again soon."""
        return any(listing.more for listing in self.listings.values())
