"""`paysync stream` on the real broker: redelivery in random order, SIGKILL and restart, two workers, dead letters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from paysync.codec import AvroCodec
from streams.metrics import StreamMetrics
from streams.ports import RealMapper
from streams.processor import Processor, Tables
from streams.settings import StreamSettings
from streams_app_gen import FIXTURES3, Rec, encode, fold, generate, redeliver, run_in_process
from streams_app_harness import StreamWorker, dlq_reader, produce, setup_topics, upsert_reader, wait_for, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]

if not FIXTURES3.exists():
    pytest.skip("../shared/fixtures/stripe is not present", allow_module_level=True)


@pytest.fixture(scope="module")
def stream() -> list[Rec]:
    return generate(seed=7, customers=30, charges=150, payouts=5)


@pytest.fixture(scope="module")
def expected(stream: list[Rec]) -> dict[tuple[str, str], dict[str, Any]]:
    """Final state of delivering the stream once, in order (the processor with in-memory tables)."""
    proc = Processor(RealMapper(StreamSettings()), AvroCodec(), StreamMetrics(CollectorRegistry()), Tables())
    state = fold(run_in_process(stream, proc))
    payouts = [v for k, v in state.items() if k[0] == "Stripe_Payout__c"]
    assert len(payouts) == 5
    assert all(p["fields"]["Reconciliation_Status__c"] == "Reconciled" for p in payouts)
    return state


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[StreamWorker]]:
    started: list[StreamWorker] = []
    yield started
    for w in started:
        w.stop()


def _start(workers: list[StreamWorker], bootstrap: str, prefix: str, app_id: str, data_dir: Path) -> StreamWorker:
    w = StreamWorker(bootstrap, prefix, app_id, data_dir, data_dir.parent / f"{data_dir.name}.log")
    workers.append(w)
    return w


def _diff(actual: dict[Any, Any], expected: dict[Any, Any]) -> str:
    missing = [k for k in expected if k not in actual][:5]
    extra = [k for k in actual if k not in expected][:5]
    wrong = [(k, actual[k], expected[k]) for k in expected if k in actual and actual[k] != expected[k]][:2]
    return f"missing {missing} extra {extra} wrong {wrong}"


def test_three_random_redeliveries_give_the_upserts_of_one_ordered_delivery(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, stream: list[Rec], expected: dict[Any, Any],
    workers: list[StreamWorker],
) -> None:
    setup_topics(kafka_bootstrap, topic_prefix)
    garbage = [("events", b"ch_x", b"not avro at all"), ("bts", b"ch_y", b"\xc3\x01short")]
    bad_json = Rec("events", "ch_bad", dict(stream[0].value, event_id="evt_bad", object_id="ch_bad",
                                           object_type="charge", raw_event="{not json"))
    unknown = Rec("events", "txn_z", dict(stream[0].value, event_id="evt_unknown", object_id="txn_z",
                                          object_type="balance", event_type="balance.available"))
    codec = AvroCodec()
    produce(kafka_bootstrap, topic_prefix, redeliver(stream) + [bad_json, unknown], garbage)
    w = _start(workers, kafka_bootstrap, topic_prefix, f"t-{uuid.uuid4().hex[:6]}", tmp_path / "w1")
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    ok = wait_until(reader, lambda recs: fold(recs) == expected, timeout=120)
    assert ok, _diff(fold(reader.records()), expected)
    reader.close()
    assert w.metric("paysync_stream_duplicates_dropped_total") >= len(stream)
    assert w.metric("paysync_stream_stale_dropped_total") > 0
    assert w.metric("paysync_stream_skipped_total") == 1.0
    dlq = dlq_reader(kafka_bootstrap, topic_prefix)
    assert wait_until(dlq, lambda recs: len(recs) >= 3, timeout=30)
    letters = dlq.records()
    dlq.close()
    assert {r["error_code"] for r in letters} == {"BAD_MAGIC", "TRUNCATED", "BAD_EVENT_JSON"}
    bad = next(r for r in letters if r["error_code"] == "BAD_EVENT_JSON")
    assert bad["event_id"] == "evt_bad" and bad["stage"] == "streams" and bad["offset"] >= 0
    assert bad["original_value"] == encode(codec, bad_json)
    assert all(r["topic"].startswith(topic_prefix) for r in letters)


def test_two_workers_share_the_partitions_and_give_the_output_of_one(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, stream: list[Rec], expected: dict[Any, Any],
    workers: list[StreamWorker],
) -> None:
    setup_topics(kafka_bootstrap, topic_prefix)
    app_id = f"t-{uuid.uuid4().hex[:6]}"
    a = _start(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / "a")
    b = _start(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / "b")
    shared = wait_for(lambda: a.metric("paysync_stream_assigned_partitions") > 0
                      and b.metric("paysync_stream_assigned_partitions") > 0, timeout=60)
    assert shared, "the two workers never shared the partitions"
    produce(kafka_bootstrap, topic_prefix, redeliver(stream, times=2, seed=3))
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    ok = wait_until(reader, lambda recs: fold(recs) == expected, timeout=150)
    assert ok, _diff(fold(reader.records()), expected)
    reader.close()
    assert a.metric("paysync_stream_processed_total") > 0
    assert b.metric("paysync_stream_processed_total") > 0
