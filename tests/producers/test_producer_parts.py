"""Pure parts and the cursor store: envelopes of real payloads, balance records, Stripe manners, cursors."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from paysync.codec import AvroCodec
from paysync.topics import create_topics
from producers.balance_records import balance_record
from producers.cursors import CursorStore
from producers.envelope import NotAnEvent, envelope
from producers.publisher import KafkaPublisher, producer_config
from producers.stripe_api import STRIPE_ERRORS, RateLimiter, outcome_for
from paysync.outcomes import Outcome


def test_real_stripe_envelopes_become_records_keyed_by_object(stripe_fixtures: Path) -> None:
    codec = AvroCodec()
    files = sorted((stripe_fixtures / "stripe-ruby-mock").glob("*.json")) + sorted(
        (stripe_fixtures / "stripe-sync-engine").glob("*.json"))
    checked = 0
    for path in files:
        raw = path.read_text()
        event = json.loads(raw)
        if event.get("object") != "event":
            continue
        key, record = envelope(event, raw, "webhook", 1)
        obj = event["data"]["object"]
        assert record["object_type"] == obj["object"]
        assert record["object_id"] == obj.get("id", key)
        if obj["object"] in ("refund", "dispute") and isinstance(obj.get("charge"), str):
            assert key == obj["charge"]
        else:
            assert key == obj.get("id", obj["object"])
        assert codec.decode(codec.encode("paysync.StripeEventEnvelope", record))["raw_event"] == record["raw_event"]
        checked += 1
    assert checked >= 20


@pytest.mark.parametrize("bad", [[], {"object": "event"}, {"object": "list", "data": []},
                                 {"id": "evt_1", "object": "event", "type": "x", "livemode": "no", "created": 1,
                                  "data": {"object": {"id": "ch_1", "object": "charge"}}}])
def test_non_events_are_refused(bad: object) -> None:
    with pytest.raises(NotAnEvent):
        envelope(bad, "{}", "webhook", 1)


def test_balance_record_keeps_exact_rate_and_keys_refund_by_charge() -> None:
    raw = ('{"id":"txn_1","object":"balance_transaction","amount":-500,"fee":0,"net":-500,"currency":"EUR",'
           '"exchange_rate":0.912345678901,"available_on":2,"created":1,"status":"pending","type":"refund",'
           '"reporting_category":"refund","source":{"id":"re_1","object":"refund","charge":"ch_9"}}')
    txn = json.loads(raw, parse_float=Decimal)
    key, rec = balance_record(txn, raw, source="poll", account="acct_1", api_version="v",
                              received_at_ms=5, payout_id="po_1", payout_transaction_count=3)
    assert key == "ch_9" and rec["source_id"] == "re_1" and rec["currency"] == "eur"
    assert rec["exchange_rate"] == "0.912345678901" and rec["payout_transaction_count"] == 3
    AvroCodec().encode("paysync.StripeBalanceTransaction", rec)


def test_error_table_retries_429_and_5xx_only() -> None:
    assert outcome_for(429) is Outcome.RETRY and outcome_for(503) is Outcome.RETRY and outcome_for(None) is Outcome.RETRY
    assert outcome_for(599) is Outcome.RETRY
    assert outcome_for(400) is Outcome.DEAD_LETTER and outcome_for(401) is Outcome.PAUSE
    assert outcome_for(418) is Outcome.DEAD_LETTER
    assert all(outcome is not Outcome.RETRY for status, outcome in STRIPE_ERRORS.items()
               if 400 <= status < 429 and status != 409)  # 409 lock_timeout: stripe-python retries it too


def test_rate_limiter_holds_the_average_rate() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(rate=20, burst=5, clock=lambda: now[0], sleep=sleep)
    for _ in range(205):
        limiter.acquire()
    assert now[0] == pytest.approx(10.0, rel=0.01)  # 5 burst + 200 at 20/s


@pytest.mark.kafka
def test_cursor_store_resumes_from_the_latest_cursor(kafka_bootstrap: str, topic_prefix: str) -> None:
    conf = {"bootstrap.servers": kafka_bootstrap}
    create_topics(conf, topic_prefix, partitions=1)
    publisher = KafkaPublisher(producer_config(conf, 10_000))
    try:
        store = CursorStore(conf, publisher, topic_prefix)
        assert store.load("events") is None and store.load_state("events") == {}
        store.save("events", {"seen": {"evt_1": 10}}, 10)
        store.save("balance_transactions", {"seen": {}}, 7)
        store.save("events", {"seen": {"evt_2": 20}}, 20)
        again = CursorStore(conf, publisher, topic_prefix)  # as after a restart
        assert again.load_state("events") == {"seen": {"evt_2": 20}, "created": 20}
        assert again.load_state("balance_transactions")["created"] == 7
    finally:
        publisher.close()


def test_a_closed_event_loop_does_not_stop_deliveries_to_the_others(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A record published from a loop that is closed before its acknowledgment (a receiver shutting down, a test's
    loop) must not stop the poll thread: records published from another loop are still acknowledged."""
    conf = {"bootstrap.servers": kafka_bootstrap}
    create_topics(conf, topic_prefix, partitions=1)
    topic = f"{topic_prefix}stripe.events"
    publisher = KafkaPublisher(producer_config(conf, 10_000)).start()

    async def queue_only() -> None:
        publisher.publish(topic, "evt_gone", b"{}")  # not awaited: its loop closes at once

    async def publish_and_wait() -> None:
        await asyncio.wait_for(publisher.publish(topic, "evt_later", b"{}"), 15)

    try:
        first = asyncio.new_event_loop()
        first.run_until_complete(queue_only())
        first.close()
        asyncio.run(publish_and_wait())  # one partition: the closed loop's report is served first
    finally:
        publisher.close()
