"""The pollers against the Stripe simulator and the real broker: every event arrives, cursors resume,
payouts arrive with all their members. Skips when the simulator is not available."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from producer_helpers import read_topic

from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS, create_topics
from producers.cursors import CursorStore
from producers.pollers.balance_poller import BalanceTransactionsPoller
from producers.pollers.events_poller import EventsPoller
from producers.pollers.listing import HorizonConfig
from producers.publisher import KafkaPublisher, producer_config
from producers.stripe_api import StripeApi

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
handle = pytest.importorskip("emulators.stripe_simulator.handle", reason="the Stripe simulator is not built yet")
EVER = 20 * 365 * 86400


@pytest.fixture
def sim() -> Iterator[Any]:
    simulator = handle.start_simulator(seed=7)
    yield simulator
    simulator.stop()


def test_events_poller_brings_every_event_once_and_resumes(sim: Any, kafka_bootstrap: str, topic_prefix: str) -> None:
    status = sim.generate(events=400)
    accounts = [None, *status["connected_accounts"]]
    conf = {"bootstrap.servers": kafka_bootstrap}
    create_topics(conf, topic_prefix, partitions=3)
    publisher = KafkaPublisher(producer_config(conf, 10_000))
    api = StripeApi(sim.api_key, sim.base_url, rate_per_s=80)
    try:
        def pollers() -> list[EventsPoller]:
            store = CursorStore(conf, publisher, topic_prefix)
            return [EventsPoller(api, publisher, store, topic_prefix=topic_prefix, account=a,
                                 horizon=HorizonConfig(initial_lookback_s=EVER)) for a in accounts]

        first = sum(p.poll_once() for p in pollers())
        calls = api.calls_made
        assert first == status["store"]["events"]
        assert sum(p.poll_once() for p in pollers()) == 0  # restarted: cursors read back from Kafka
        records = read_topic(kafka_bootstrap, STRIPE_EVENTS.full_name(topic_prefix))
    finally:
        publisher.close()
    assert len(records) == len({r["event_id"] for r in records}) == first
    assert {r["source"] for r in records} == {"poll"}
    by_account = defaultdict(int)
    for r in records:
        by_account[r["account"]] += 1
        assert json.loads(r["raw_event"])["id"] == r["event_id"]
    assert set(by_account) <= set(accounts)
    print(f"events poller: {calls} Stripe calls for {first} events = {calls * 1000 / first:.1f} per 1,000")


def test_balance_poller_publishes_payout_members_with_counts(sim: Any, kafka_bootstrap: str,
                                                             topic_prefix: str) -> None:
    status = sim.generate(events=400)
    accounts = [None, *status["connected_accounts"]]
    conf = {"bootstrap.servers": kafka_bootstrap}
    create_topics(conf, topic_prefix, partitions=3)
    publisher = KafkaPublisher(producer_config(conf, 10_000))
    api = StripeApi(sim.api_key, sim.base_url, rate_per_s=80)
    try:
        store = CursorStore(conf, publisher, topic_prefix)
        pollers = [BalanceTransactionsPoller(api, publisher, store, topic_prefix=topic_prefix, account=a,
                                             horizon=HorizonConfig(initial_lookback_s=EVER), payout_lookback_days=90) for a in accounts]
        published = sum(p.poll_once() for p in pollers)
        again = sum(p.poll_once() for p in pollers)
        records = read_topic(kafka_bootstrap, STRIPE_BALANCE_TRANSACTIONS.full_name(topic_prefix),
                             schema="paysync.StripeBalanceTransaction")
    finally:
        publisher.close()
    assert published == len(records) > 0 and again == 0
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["payout_id"]:
            members[r["payout_id"]].append(r)
    assert members, "no payout reached paid/failed in the scenario"
    for payout_id, rows in members.items():
        counted = [r for r in rows if r["type"] != "payout"]
        assert {r["payout_transaction_count"] for r in rows} == {len(counted)}
        own = [r for r in rows if r["type"] == "payout"]
        if own:
            assert sum(r["net"] for r in counted) == -own[0]["net"]  # a payout pays out its members' nets
    print(f"balance poller: {api.calls_made} Stripe calls for {published} records")
