"""Issue 15 points 3 and 4 against traffic, on the real broker: the simulator sends thin events (an event destination
with `event_payload: thin`) to the receiver, and a Connect account joins while the pollers run.

Phase 1, webhooks only (no poller yet), every delivery thin: whatever lands came through the receiver's fetch of
`related_object`, so every object the events were about must be in Salesforce (balance transactions excepted:
only the balance poller brings them). Phase 2, the pollers alone (every webhook dropped), started with no fixed
account: the accounts of the second run, one of them connected mid-run, are found by `GET /v1/accounts` and
polled by the same process, and the whole account reconciles CLEAN.
Fails on the old simulator (6266064^): no `thin_event_share` or `accounts_connected_during_run` (400 from
`/_sim/generate`), and `GET /v1/accounts` answered 404, so no account was ever discovered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from core.config import mapping_config
from ops.demo import run_reconcile, settle
from ops.pipeline import LocalPipeline, PipelineOptions
from ops.reconcile.expected import expected_records
from paysync.codec import AvroCodec
from paysync.settings import settings_env
from paysync.topics import STRIPE_EVENTS
from producers.pollers.settings import PollerSettings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SCENARIO = {"delay_scale": 0.001, "manual_payout_rate": 0.0}  # manual payouts: open in issue 19, not this test's


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[LocalPipeline]:
    p = LocalPipeline(PipelineOptions(workdir=tmp_path / "pipeline", bootstrap=kafka_bootstrap, partitions=3,
                                      seed=23, poll_interval_s=1.0))
    p.start()
    try:
        yield p
    finally:
        p.stop()


def _envelopes(p: LocalPipeline) -> list[dict[str, Any]]:
    """Every record of the pipeline's stripe.events topic, decoded."""
    topic, codec = p.topic(STRIPE_EVENTS.name), AvroCodec()
    consumer = Consumer({"bootstrap.servers": p.bootstrap, "group.id": f"{p.prefix}probe-thin",
                         "enable.auto.commit": False})
    try:
        ends = p.end_offsets(topic)
        consumer.assign([TopicPartition(topic, part, 0) for part in ends])
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(out) < sum(ends.values()) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(codec.decode(msg.value(), "paysync.StripeEventEnvelope"))
        return out
    finally:
        consumer.close()


def _thin_phase(p: LocalPipeline) -> None:
    assert p.stripe is not None
    p.stripe.generate(wait=False, events=150, rate=10, thin_event_share=1.0, **SCENARIO)
    assert settle(p, time.monotonic(), timeout=90, quiet_for=3.0), "the thin phase did not settle"
    status = p.stripe.status()
    assert status["deliveries"]["failed"] == 0 and status["deliveries"]["succeeded"] >= status["events_generated"]
    records = _envelopes(p)
    assert records and {r["source"] for r in records} == {"webhook"}
    # every delivery was thin, every one names a related object: each landed as the snapshot fetched for it
    assert all(not r["thin"] and '"paysync_origin":"thin_event"' in r["raw_event"] for r in records)
    assert len({r["event_id"] for r in records}) == status["events_generated"]
    stats = p.stripe.stats()
    assert stats.get("charges.retrieve", 0) > 0 and stats.get("payment_intents.retrieve", 0) > 0
    expected, _ = expected_records(p.stripe.truth(), mapping_config())
    report = run_reconcile(p)
    missing = {(d["sobject"], d["external_id"]) for d in report["drifts"] if d["kind"] == "missing"}
    about_events = {key for key in expected if key[0] != "Stripe_Balance_Transaction__c"}
    assert about_events and not (missing & about_events), sorted(missing & about_events)[:10]


def test_thin_events_land_and_an_account_connected_mid_run_is_polled_without_a_restart(
        pipeline: LocalPipeline) -> None:
    p = pipeline
    assert p.stripe is not None and p.supervisor is not None
    started = time.monotonic()
    _thin_phase(p)
    thin_s = time.monotonic() - started
    first_accounts = set(p.stripe.status()["connected_accounts"])
    p.stripe.configure(drop_rate=1.0)  # phase 2: nothing by webhook, the pollers alone
    # sweeps every 2 s: a listing still empty after its few extra sweeps (`listing.py` 22aed48: after 1, 2, 4
    # polls), e.g. a new account's type group whose first event comes later, waits for the scheduled sweep
    # (300 s by default), longer than this test: with the default schedule it is not CLEAN here
    p.supervisor.add("poll", ["poll"], env=settings_env(PollerSettings, stripe_accounts="", poll_accounts_every_s=1.0,
                                                        poll_sweep_every_s=2.0))
    p.stripe.generate(wait=False, events=200, rate=20, accounts_connected_during_run=1, connect_at=0.4, **SCENARIO)
    assert settle(p, time.monotonic(), timeout=90, quiet_for=4.0), "the polling phase did not settle"
    listed = p.stripe.admin("GET", "/_sim/status")["connected_accounts"]
    second = [a for a in listed if a not in first_accounts]
    assert len(second) == 4  # the second run's three, and the one connected during it
    by_account = p.stripe.stats_by_account()
    assert all(by_account.get(a, {}).get("events.list", 0) > 0 for a in second), by_account
    assert p.supervisor.components["poll"].restarts == 0
    report = run_reconcile(p)
    assert report["summary"]["clean"], (report["summary"], report["drifts"][:10])
    truth_accounts = {t.get("account") for t in p.stripe.truth() if t["kind"] == "object"}
    assert set(second) <= truth_accounts
    print(f"thin phase {thin_s:.0f} s, whole test {time.monotonic() - started:.0f} s, "
          f"{report['summary']['expected_records']} records reconciled, stats {p.stripe.stats()}")
