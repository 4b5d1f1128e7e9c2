"""Tails `GET /v1/events` so events whose webhooks never arrived still reach `stripe.events` (source=poll).

Each poll lists events with `created >= cursor.created - overlap` (newest-first, 100 per call; a short
overlap on most polls and the whole window now and then: `producers.pollers.window`), drops those already
published (ids remembered for the overlap window, kept in the cursor), and
publishes the rest oldest-first. Then the cursor is saved: a crash between the two re-publishes
(at-least-once; the streams deduplicate on event id, as they do for webhook/poll overlap).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from paysync.codec import AvroCodec
from paysync.records import ENVELOPE
from paysync.topics import STRIPE_EVENTS
from producers.cursors import CursorStore
from producers.envelope import NotAnEvent, envelope
from producers.publisher import KafkaPublisher
from producers.pollers.window import ListWindow
from producers.stripe_api import StripeApi

log = logging.getLogger(__name__)
MAX_REMEMBERED = 50_000


class EventsPoller:
    """One account's events (`account=None`: the platform). `poll_once()` returns how many it published."""

    def __init__(self, api: StripeApi, publisher: KafkaPublisher, cursors: CursorStore, *, topic_prefix: str = "",
                 account: str | None = None, overlap_s: int = 300, initial_lookback_s: int = 3600,
                 recent_overlap_s: int | None = None, deep_every_s: float = 0.0,
                 publish_timeout_s: float = 30.0, codec: AvroCodec | None = None) -> None:
        self.api, self.publisher, self.cursors = api, publisher, cursors
        self.topic = STRIPE_EVENTS.full_name(topic_prefix)
        self.account = account
        self.name = f"events:{account}" if account else "events"
        self.overlap_s, self.initial_lookback_s = overlap_s, initial_lookback_s
        self.window = ListWindow(overlap_s, initial_lookback_s, recent_overlap_s, deep_every_s)
        self.publish_timeout_s = publish_timeout_s
        self.codec = codec or AvroCodec()
        self.state: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self.state is None:
            self.state = self.cursors.load_state(self.name) or {}
            self.state.setdefault("seen", {})
        return self.state

    def poll_once(self, now: float | None = None) -> int:
        state = self._load()
        now = time.time() if now is None else now
        since = self.window.since(state.get("created"), now)
        seen: dict[str, int] = state["seen"]
        fresh: list[tuple[dict[str, Any], str]] = []
        for page, _ in self.api.list_all("/v1/events", {"created": {"gte": since}}, self.account):
            fresh.extend((obj, raw) for obj, raw in zip(page.objects, page.raw) if obj.get("id") not in seen)
        fresh.reverse()  # Stripe lists newest first; publish oldest first
        fresh.sort(key=lambda item: int(item[0].get("created") or 0))
        received_at = int(time.time() * 1000)
        batch: list[tuple[str, str, bytes]] = []
        for obj, raw in fresh:
            try:
                key, record = envelope(obj, raw, "poll", received_at)
            except NotAnEvent as exc:
                log.warning("listed object is not an event", extra={"event_id": obj.get("id"), "error": str(exc)})
                continue
            if record["account"] is None:
                record["account"] = self.account
            batch.append((self.topic, key, self.codec.encode_record(ENVELOPE, record)))
        published = self.publisher.publish_many_sync(batch, self.publish_timeout_s)
        for obj, _ in fresh:
            seen[str(obj.get("id"))] = int(obj.get("created") or 0)
        newest = max([state.get("created") or 0, *seen.values()]) if seen else state.get("created")
        horizon = (newest or 0) - self.overlap_s
        state["seen"] = dict(sorted(((k, v) for k, v in seen.items() if v >= horizon),
                                    key=lambda kv: kv[1])[-MAX_REMEMBERED:])
        state["created"] = newest
        self.cursors.save(self.name, state, newest)
        return published
