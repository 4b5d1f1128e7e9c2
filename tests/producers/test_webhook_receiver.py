"""The receiver app against the real broker: what is published, what is refused, and how."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import stripe
from producer_helpers import OLD_SECRET, SECRET, InProcessReceiver, make_event, read_topic, signed_headers

pytestmark = pytest.mark.kafka


def test_each_delivery_lands_once_with_its_envelope(inproc: InProcessReceiver, kafka_bootstrap: str) -> None:
    charge = make_event()
    refund = make_event("refund", "charge.refund.updated",
                        object_fields={"charge": charge["data"]["object"]["id"]})
    for event in (charge, refund, charge):  # Stripe may deliver one event twice: two deliveries, two records
        status, body = inproc.deliver(event)
        assert status == 200 and body["event_id"] == event["id"]
    records = read_topic(kafka_bootstrap, inproc.app.topic)  # to the end: exactly what was acknowledged
    assert [r["event_id"] for r in records].count(charge["id"]) == 2
    assert len(records) == 3
    by_id = {r["event_id"]: r for r in records}
    env = by_id[charge["id"]]
    assert env["source"] == "webhook" and env["object_type"] == "charge" and env["thin"] is False
    assert env["object_id"] == charge["data"]["object"]["id"] == env["_key"]
    assert env["api_version"] == "2026-10-28.endive" and env["created"] == charge["created"]
    assert json.loads(env["raw_event"]) == charge
    assert abs(env["received_at"] / 1000 - time.time()) < 60
    # a refund is keyed by its charge: same partition, so order is kept
    assert by_id[refund["id"]]["_key"] == charge["data"]["object"]["id"]
    assert by_id[refund["id"]]["_partition"] == env["_partition"]
    assert by_id[refund["id"]]["object_id"] == refund["data"]["object"]["id"]


def test_rotated_secret_connect_account_thin_event_and_unknown_type(
        inproc: InProcessReceiver, kafka_bootstrap: str) -> None:
    connect = make_event(account="acct_1Connected0001")
    unknown = make_event("obj", "issuing_card.created")
    thin = {"id": "evt_test_thin01", "object": "v2.core.event", "type": "v1.billing.meter.error_report_triggered",
            "created": "2026-11-28T10:00:00.000Z", "livemode": False, "context": "acct_1ThinCtx",
            "related_object": {"id": "mtr_123", "type": "billing.meter", "url": "/v1/billing/meters/mtr_123"}}
    assert inproc.deliver(connect, secret=OLD_SECRET)[0] == 200
    assert inproc.deliver(unknown)[0] == 200
    assert inproc.deliver(thin)[0] == 200
    records = {r["event_id"]: r for r in read_topic(kafka_bootstrap, inproc.app.topic)}
    assert records[connect["id"]]["account"] == "acct_1Connected0001"
    assert records[unknown["id"]]["object_type"] == "obj"
    t = records["evt_test_thin01"]
    assert t["thin"] is True and t["object_id"] == "mtr_123" and t["object_type"] == "billing.meter"
    assert t["account"] == "acct_1ThinCtx" and t["created"] == int(datetime(2026, 11, 28, 10, tzinfo=timezone.utc).timestamp())


def _signed_bytes(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    sig = hmac.new(SECRET.encode(), b"%d." % ts + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Stripe-Signature": f"t={ts},v1={sig}"}


def _refusals(inproc: InProcessReceiver) -> list[tuple[int, str, bytes, Any]]:
    event = make_event()
    body = json.dumps(event)
    now = int(time.time())
    big = json.dumps(make_event(object_fields={"pad": "x" * (1024 * 1024)}))
    not_json = "{not json"
    not_event = json.dumps({"id": "ch_1", "object": "charge"})
    bad_created = json.dumps(make_event(created=2**62))
    forged = stripe.WebhookSignature.generate_signature_header(body, "whsec_attacker")
    return [
        (400, "missing_signature", body.encode(), {"Content-Type": "application/json"}),
        (400, "bad_signature", body.encode(), {"Content-Type": "application/json", "Stripe-Signature": forged}),
        (400, "bad_signature", (body + " ").encode(), signed_headers(body)),
        (400, "timestamp_too_old", body.encode(), signed_headers(body, timestamp=now - 301)),
        (400, "timestamp_in_future", body.encode(), signed_headers(body, timestamp=now + 3600)),
        (400, "malformed_signature", body.encode(), {"Content-Type": "application/json", "Stripe-Signature": "v1=x"}),
        (415, "unsupported_media_type", body.encode(), {**signed_headers(body), "Content-Type": "text/plain"}),
        (413, "body_too_large", big.encode(), signed_headers(big)),
        (400, "malformed_json", not_json.encode(), signed_headers(not_json)),
        (400, "malformed_json", b"\xff\xfe", _signed_bytes(b"\xff\xfe")),
        (400, "not_an_event", not_event.encode(), signed_headers(not_event)),
        (400, "not_an_event", bad_created.encode(), signed_headers(bad_created)),
    ]


def test_refusals_have_the_right_status_reason_and_publish_nothing(
        inproc: InProcessReceiver, kafka_bootstrap: str) -> None:
    cases = _refusals(inproc)
    for status, reason, body, headers in cases:
        got, answer = inproc.request("POST", "/webhooks/stripe", body, headers)
        assert (got, answer["error"]) == (status, reason), answer
        assert answer["message"]
    assert inproc.request("GET", "/webhooks/stripe")[0] == 405
    assert inproc.request("GET", "/nope")[0] == 404
    sentinel = make_event()
    assert inproc.deliver(sentinel)[0] == 200
    assert [r["event_id"] for r in read_topic(kafka_bootstrap, inproc.app.topic)] == [sentinel["id"]]
    m = inproc.app.metrics
    assert m.received._value.get() == len(cases) + 1
    assert m.accepted._value.get() == 1
    assert m.rejected.labels("bad_signature")._value.get() == 2
    assert m.in_flight._value.get() == 0


def test_health_and_readiness(inproc: InProcessReceiver) -> None:
    assert inproc.request("GET", "/healthz") == (200, {"status": "ok"})
    assert inproc.request("GET", "/readyz")[0] == 200


def test_readiness_fails_and_publish_answers_503_without_a_broker(topic_prefix: str) -> None:
    from paysync.net import free_port

    receiver = InProcessReceiver(f"127.0.0.1:{free_port()}", topic_prefix, publish_timeout_s=1.5)
    try:
        assert receiver.request("GET", "/readyz")[0] == 503
        status, body = receiver.deliver(make_event())
        assert (status, body["error"]) == (503, "publish_failed")
        assert receiver.app.metrics.accepted._value.get() == 0
    finally:
        receiver.publisher.close(timeout=0)
        receiver.loop.close()
