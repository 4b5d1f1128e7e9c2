"""The stall watch (`streams.watchdog`) on its own, and once in a real worker whose partition Faust stops fetching."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from paysync.topics import STRIPE_EVENTS
from streams.watchdog import StallWatch, Waiting
from streams_app_harness import StreamWorker, setup_topics, wait_for, worker_report

A = ("t.stripe.events", 0)
B = ("t.stripe.events", 1)


def _watch(timeout_s: float = 60.0, tps: tuple[tuple[str, int], ...] = (A, B)) -> StallWatch:
    watch = StallWatch(timeout_s)
    watch.assign(tps, now=0.0)
    return watch


def _stalled(waiting: list[Waiting]) -> set[tuple[str, int]]:
    return {w.tp for w in waiting if w.stalled}


def test_records_waiting_without_progress_are_reported_once_the_timeout_has_passed() -> None:
    watch = _watch()
    watch.processed[A] = 9
    assert _stalled(watch.check(10.0, {A: 20, B: 5}, {A: 0, B: 5})) == set()
    assert _stalled(watch.check(59.0, {A: 20, B: 5}, {A: 0, B: 5})) == set()
    [waiting] = watch.check(70.0, {A: 20, B: 5}, {A: 0, B: 5})
    assert waiting == Waiting(A, processed=9, start=0, highwater=20, seconds=60.0, stalled=True)


def test_progress_restarts_the_clock() -> None:
    watch = _watch()
    watch.processed[A] = 3
    watch.check(10.0, {A: 20}, {})
    watch.processed[A] = 4
    [waiting] = watch.check(50.0, {A: 20}, {})
    assert waiting.seconds == 0.0
    assert _stalled(watch.check(109.0, {A: 20}, {})) == set()
    assert _stalled(watch.check(110.0, {A: 20}, {})) == {A}


def test_a_caught_up_or_unknown_partition_is_not_waiting_and_its_clock_restarts() -> None:
    watch = _watch()
    watch.processed[A] = 19
    assert watch.check(100.0, {A: 20, B: None}, {B: 0}) == []  # A caught up; B: highwater unknown
    assert watch.check(130.0, {A: 20, B: 4}, {}) == []  # B: neither processed nor a start offset, no floor
    # a record arrives after a long idle time: it is not stalled before it has waited the whole timeout
    assert _stalled(watch.check(170.0, {A: 21}, {})) == set()
    assert _stalled(watch.check(230.0, {A: 21}, {})) == {A}


def test_nothing_processed_since_the_assignment_counts_from_the_start_offset() -> None:
    watch = _watch()
    assert watch.check(100.0, {A: 7, B: 12}, {A: 7, B: 3}) == [
        Waiting(B, processed=None, start=3, highwater=12, seconds=100.0, stalled=True),
    ]


def test_a_stale_processed_offset_below_the_start_does_not_count() -> None:
    watch = _watch()
    watch.processed[A] = 2  # e.g. an old record handled after the group had moved on
    assert watch.check(100.0, {A: 10}, {A: 10}) == []


def test_table_recovery_holds_the_clock() -> None:
    watch = _watch()
    for now in (30.0, 60.0, 90.0):
        watch.hold(now)
    assert _stalled(watch.check(140.0, {A: 20}, {A: 0})) == set()
    assert _stalled(watch.check(150.0, {A: 20}, {A: 0})) == {A}


def test_a_new_assignment_restarts_the_clocks_forgets_offsets_and_drops_revoked_partitions() -> None:
    watch = _watch()
    watch.processed[A] = 5
    watch.check(10.0, {A: 20, B: 20}, {A: 0, B: 0})
    watch.assign([A], now=50.0)
    assert watch.watched == {A} and watch.processed == {}
    waiting = watch.check(100.0, {A: 20, B: 20}, {A: 6, B: 0})
    assert [(w.tp, w.processed, w.seconds, w.stalled) for w in waiting] == [(A, None, 50.0, False)]
    assert _stalled(watch.check(110.0, {A: 20, B: 20}, {A: 6, B: 0})) == {A}


def test_a_zero_timeout_never_reports_a_stall() -> None:
    watch = _watch(timeout_s=0.0)
    [waiting] = watch.check(1e6, {A: 20}, {A: 0})
    assert waiting.seconds == 1e6 and not waiting.stalled
    with pytest.raises(ValueError):
        StallWatch(-1.0)


# `paysync stream` with one more timer: once the tables are ready it pauses stripe.events partition 0 in Faust's
# consumer (and again if anything resumes it), so Faust stops fetching it — the stall of faust-streaming #175.
PAUSING_WORKER = """
import sys
import streams.app

build_app = streams.app.build_app


def build_and_pause(*args, **kwargs):
    stream_app = build_app(*args, **kwargs)
    app = stream_app.app

    @app.timer(interval=0.2)
    async def pause_events_0():
        if app.in_recovery or not app.tables.recovery.completed.is_set():
            return
        tp = next((tp for tp in app.consumer.assignment() if tp.topic.endswith("stripe.events") and tp.partition == 0),
                  None)
        if tp is not None and tp not in app.consumer._paused_partitions:
            app.consumer.pause_partitions([tp])
            print("PAUSED", tp.topic, tp.partition, flush=True)

    return stream_app


streams.app.build_app = build_and_pause
from streams.cli import main

sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_whose_partition_faust_stops_fetching_exits_with_75(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, workers: list[StreamWorker],
) -> None:
    setup_topics(kafka_bootstrap, topic_prefix)
    w = StreamWorker(kafka_bootstrap, topic_prefix, f"t-{uuid.uuid4().hex[:6]}", tmp_path / "w", tmp_path / "w.log",
                     extra_env={"PAYSYNC_STREAM_STALL_TIMEOUT_S": "3"}, launcher=[sys.executable, "-c", PAUSING_WORKER])
    workers.append(w)
    assert wait_for(lambda: "PAUSED" in w.log_path.read_text(), timeout=60), worker_report(workers)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for partition in (0, 1):  # not Avro: a processed record is dead-lettered, which is progress too
        producer.produce(STRIPE_EVENTS.full_name(topic_prefix), key=b"k", value=b"junk", partition=partition)
    assert producer.flush(30) == 0
    assert wait_for(lambda: w.proc.poll() is not None, timeout=30), worker_report(workers)
    assert w.proc.returncode == 75, worker_report(workers)
    [line] = [json.loads(line) for line in w.log_path.read_text().splitlines() if '"level": "critical"' in line]
    assert line["stalled"] == [{"topic": STRIPE_EVENTS.full_name(topic_prefix), "partition": 0, "processed": None,
                                "start": 0, "highwater": 1, "seconds": line["stalled"][0]["seconds"]}]
    assert line["stalled"][0]["seconds"] >= 3
