"""Issue 15 point 4: a thin event is turned into the snapshot it points at (fetched once, marked with its
origin), and a fetch that fails after its retries is dead-lettered with the event id. Fails on the old code
(8fd7a4f: no `producers.thin_events`; thin events were published as-is and dropped by the streams)."""

from __future__ import annotations

import json
from typing import Any

from fake_stripe import FakeStripe

from paysync.codec import AvroCodec
from producers.stripe_api import StripeApiError, outcome_for
from producers.thin_events import ThinEventFetcher

CODEC = AvroCodec()
THIN = {"id": "evt_thin_1", "object": "v2.core.event", "type": "v1.charge.updated", "livemode": False,
        "created": "2026-12-01T20:00:00.000Z", "context": "acct_123",
        "related_object": {"id": "ch_1", "type": "charge", "url": "/v1/charges/ch_1"}}


class RetrievingStripe(FakeStripe):
    def get_json(self, path: str, params: dict[str, Any], account: str | None = None,
                 endpoint: str | None = None) -> dict[str, Any]:
        self.calls_made += 1
        self.requests.append((path, {"account": account, "endpoint": endpoint}))
        if self.calls_made in self.fail_calls:
            raise StripeApiError(endpoint or path, 503, "req_x", outcome_for(503), "unavailable")
        return {"id": path.rsplit("/", 1)[1], "object": "charge", "amount": 500, "currency": "usd",
                "status": "succeeded", "created": 1_800_000_000}


def test_a_thin_event_lands_as_the_snapshot_it_points_at_fetched_once() -> None:
    api = RetrievingStripe()
    fetcher = ThinEventFetcher(api)  # type: ignore[arg-type]
    topic, key, value = fetcher.resolve(THIN, "webhook", 1)
    again = fetcher.resolve(dict(THIN), "webhook", 2)  # a redelivery: no second fetch
    assert api.calls_made == 1 and again[2] == value
    assert api.requests[0] == ("/v1/charges/ch_1", {"account": "acct_123", "endpoint": "/v1/charges/{id}"})
    record = CODEC.decode(value, "paysync.StripeEventEnvelope")
    assert topic == "stripe.events" and record["event_id"] == "evt_thin_1" and not record["thin"]
    assert record["object_type"] == "charge" and record["object_id"] == "ch_1" and record["account"] == "acct_123"
    raw = json.loads(record["raw_event"])
    assert raw["paysync_origin"] == "thin_event" and raw["data"]["object"]["amount"] == 500


def test_a_failed_fetch_is_dead_lettered_with_the_event_id() -> None:
    api = RetrievingStripe()
    api.fail_calls = {1}
    topic, key, value = ThinEventFetcher(api).resolve(THIN, "webhook", 1)  # type: ignore[arg-type]
    dead = CODEC.decode(value, "paysync.DeadLetter")
    assert topic == "paysync.dlq" and key == "ch_1"
    assert dead["event_id"] == "evt_thin_1" and dead["error_kind"] == "thin_fetch" and dead["error_code"] == "503"
