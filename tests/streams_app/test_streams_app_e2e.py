"""`paysync stream` on the real broker: redelivery in random order, SIGKILL and restart, two workers, dead letters."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from paysync.codec import AvroCodec
from streams.app import EXIT_STALLED
from streams_app_gen import Rec, encode, fold, redeliver
from streams_app_harness import (
    StreamWorker, diff_states, dlq_reader, produce, setup_topics, start_worker, upsert_reader, wait_for, wait_until,
    worker_report,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]



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
    w = start_worker(workers, kafka_bootstrap, topic_prefix, f"t-{uuid.uuid4().hex[:6]}", tmp_path / "w1")
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    ok = wait_until(reader, lambda recs: fold(recs) == expected, timeout=120)
    assert ok, diff_states(fold(reader.records()), expected) + worker_report(workers)
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
    a = start_worker(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / "a")
    b = start_worker(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / "b")
    shared = wait_for(lambda: a.metric("paysync_stream_assigned_partitions") > 0
                      and b.metric("paysync_stream_assigned_partitions") > 0, timeout=60)
    assert shared, "the two workers never shared the partitions" + worker_report(workers)
    produce(kafka_bootstrap, topic_prefix, redeliver(stream, times=2, seed=3))
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    ok = wait_until(reader, lambda recs: fold(recs) == expected, timeout=150)
    assert ok, diff_states(fold(reader.records()), expected) + worker_report(workers)
    reader.close()
    # a worker the stall watchdog stopped cannot be asked, and its partitions went to the other one
    stopped = [w for w in (a, b) if w.proc.poll() == EXIT_STALLED]
    if stopped:
        warnings.warn("the stall watchdog stopped a worker:" + worker_report(stopped), stacklevel=1)
    for w in (a, b):
        assert w in stopped or w.metric("paysync_stream_processed_total") > 0, worker_report(workers)
