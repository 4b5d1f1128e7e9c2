"""Thin events (event destinations, `object: "v2.core.event"`) turned into the snapshot they point at
(issue 15 point 4).

'Event Destination event types': "The payload of thin events is unversioned. During processing, you must fetch
the versioned event from the API or fetch the resource's current state." So the related object is fetched with
its v1 retrieve (`related_object.url`, else `/v1/<list path of its type>/<id>`, with the event's `context` as
the connected account) and published as a normal snapshot envelope: `event_id` = the thin event's id,
`data.object` = the fetched object, marked `"paysync_origin": "thin_event"` in its JSON. The fetch is
deduplicated (an event id already fetched, or the same object fetched within `reuse_s`, is not fetched again)
and rate-limited (the `StripeApi` limits). A fetch that still fails after the client's retries becomes a dead
letter (stage `producers`, error kind `thin_fetch`) with the event id.

A `v1.<type>` thin event (stripe-python 16.1 `V1ChargeSucceededEventNotification.LOOKUP_TYPE =
"v1.charge.succeeded"`) is published under its v1 type (`charge.succeeded`), the snapshot event it stands for.
The object of a `*.deleted` event is gone: its retrieve answers 404 (a deleted draft invoice: "No such invoice"),
so that 404 is the deletion itself and lands as the deleted object (`{"id", "object", "deleted": true}`, the shape
of a deleted object), not as a dead letter (found by tests/ops_e2e/test_thin_events_and_new_accounts.py's
simulator, issue 15).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from core import registry
from paysync.codec import AvroCodec
from paysync.deadletter import dead_letter_record, encode_dead_letter
from paysync.records import ENVELOPE
from paysync.topics import STRIPE_EVENTS
from producers.envelope import NotAnEvent, Source, envelope
from producers.stripe_api import StripeApi, StripeApiError, compact_json

ORIGIN = "thin_event"
Record = tuple[str, str, bytes]  # (topic, key, value)


class ThinEventFetcher:
    """`resolve(event, raw, source)`: the record to publish for one thin event (a snapshot or a dead letter)."""

    def __init__(self, api: StripeApi, topic_prefix: str = "", codec: AvroCodec | None = None,
                 remember: int = 10_000, reuse_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.api, self.topic_prefix, self.codec = api, topic_prefix, codec or AvroCodec()
        self.topic = STRIPE_EVENTS.full_name(topic_prefix)
        self.remember, self.reuse_s, self.clock = remember, reuse_s, clock
        self._by_event: OrderedDict[str, Record] = OrderedDict()
        self._by_object: dict[str, tuple[float, dict[str, Any], str]] = {}
        self.fetches = 0

    def _path(self, related: dict[str, Any]) -> tuple[str, str]:
        """(path, named operation) of the related object's retrieve."""
        url = related.get("url")
        spec = registry.find(str(related.get("type")))
        base = spec.list_path if spec is not None else f"/v1/{related.get('type')}s"
        if isinstance(url, str) and url.startswith("/v1/"):
            return url, f"{url.rsplit('/', 1)[0]}/{{id}}"
        return f"{base}/{related['id']}", f"{base}/{{id}}"

    def _fetch(self, related: dict[str, Any], account: str | None) -> tuple[dict[str, Any], str]:
        key = f"{account}:{related.get('type')}:{related.get('id')}"
        cached = self._by_object.get(key)
        if cached is not None and self.clock() - cached[0] < self.reuse_s:
            return cached[1], cached[2]
        path, endpoint = self._path(related)
        self.fetches += 1
        obj, raw = self.api.retrieve(path, account, endpoint=endpoint)
        self._by_object[key] = (self.clock(), obj, raw)
        if len(self._by_object) > self.remember:
            self._by_object.pop(next(iter(self._by_object)))
        return obj, raw

    def resolve(self, event: dict[str, Any], source: Source, received_at_ms: int) -> Record:
        """The snapshot envelope of `event`'s related object, or its dead letter; NotAnEvent if it has none."""
        event_id = str(event.get("id"))
        if event_id in self._by_event:
            return self._by_event[event_id]
        related = event.get("related_object")
        if not isinstance(related, dict) or not related.get("id") or not related.get("type"):
            raise NotAnEvent("a thin event without related_object {id, type} has nothing to fetch")
        account = event.get("context") if isinstance(event.get("context"), str) else None
        event_type = _v1_type(event.get("type"))
        try:
            obj, _raw = self._fetch(related, account)
        except StripeApiError as exc:
            if exc.status != 404 or not event_type.endswith(".deleted"):
                return self._dead_letter(event, related, exc)
            obj = {"id": related["id"], "object": related["type"], "deleted": True}
        snapshot = {"id": event_id, "object": "event", "type": event_type,
                    "created": _unix(event.get("created")), "livemode": bool(event.get("livemode")),
                    "account": account, "api_version": self.api.api_version, "data": {"object": obj},
                    "paysync_origin": ORIGIN}
        raw_event = compact_json(snapshot)  # so `snapshot` is redacted as it is, not parsed back
        key, record = envelope(snapshot, raw_event, source, received_at_ms, exact=True)
        out = (self.topic, key, self.codec.encode_record(ENVELOPE, record))
        self._by_event[event_id] = out
        if len(self._by_event) > self.remember:
            self._by_event.popitem(last=False)
        return out

    def _dead_letter(self, event: dict[str, Any], related: dict[str, Any], exc: StripeApiError) -> Record:
        record = dead_letter_record(topic=self.topic, partition=-1, offset=-1, stage="producers",
                                    error_kind="thin_fetch", error_code=str(exc.status or "network"),
                                    message=f"fetching the related object of a thin event failed: {exc}",
                                    value=compact_json(event).encode(),  # numbers exact, as parsed
                                    event_id=str(event.get("id")), object_id=str(related.get("id")))
        topic, value = encode_dead_letter(self.codec, record, self.topic_prefix)
        return topic, str(related.get("id")), value


def _v1_type(thin_type: Any) -> str:
    """`v1.invoice.deleted` -> `invoice.deleted`; a type without the prefix as it is."""
    text = str(thin_type)
    return text[3:] if text.startswith("v1.") else text


def _unix(created: Any) -> int:
    """A thin event's ISO-8601 `created` (or unix seconds) as unix seconds."""
    if isinstance(created, int):
        return created
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
