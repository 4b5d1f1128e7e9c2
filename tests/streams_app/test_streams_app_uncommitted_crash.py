"""The crash argument of `streams.processor`: outputs are not awaited per record, yet nothing is lost.

A worker with a commit interval of an hour handles the whole (redelivered, shuffled) stream, so its
tables remember every event while not one input offset is committed; it is SIGKILLed and restarted
(same data dir, or a lost disk restored from the changelogs). Everything is replayed: a record meeting
its own origin in the tables must re-emit, so the restarted worker's outputs *alone* must rebuild the
final Salesforce state of the single in-order run — as they would have to if every output of the first
worker had been lost — and the whole topic must fold to that state too.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from paysync.topics import SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams_app_gen import Rec, expected_state, fold, generate, redeliver
from streams_app_harness import diff_states, PARTITIONS, StreamWorker, produce, setup_topics, upsert_reader, wait_for, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]


NEVER = {"PAYSYNC_STREAM_COMMIT_EVERY": "100000000"}


@pytest.fixture(scope="module")
def stream() -> list[Rec]:
    return generate(seed=5, customers=20, charges=100, payouts=4)


@pytest.fixture(scope="module")
def expected(stream: list[Rec]) -> dict[tuple[str, str], dict[str, Any]]:
    return expected_state(stream, payouts=4)


def _end_offsets(bootstrap: str, topic: str, group: str | None = None) -> dict[int, int]:
    """High watermarks of `topic` or, with `group`, that group's committed offsets (-1001: none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group or f"probe-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        if group:
            parts = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
            return {tp.partition: tp.offset for tp in parts}
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()


def _stable(read: Any, settle_s: float = 2.0) -> Any:
    """A condition that holds once `read()` has kept the same value for `settle_s` seconds."""
    last: dict[str, Any] = {"value": object(), "since": time.monotonic()}

    def check() -> bool:
        value = read()
        if value != last["value"]:
            last.update(value=value, since=time.monotonic())
            return False
        return time.monotonic() - last["since"] >= settle_s

    return check


@pytest.mark.parametrize("restart_dir", ["same", "fresh"])
def test_uncommitted_work_is_re_emitted_after_a_sigkill(
    restart_dir: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, stream: list[Rec],
    expected: dict[Any, Any], workers: list[StreamWorker],
) -> None:
    setup_topics(kafka_bootstrap, topic_prefix)
    copies = redeliver(stream, times=2, seed=9)
    produce(kafka_bootstrap, topic_prefix, copies)
    app_id = f"t-{uuid.uuid4().hex[:6]}"
    group = f"{topic_prefix}{app_id}"
    first = StreamWorker(kafka_bootstrap, topic_prefix, app_id, tmp_path / "w", tmp_path / "w.log",
                         commit_interval=3600, extra_env=NEVER)
    workers.append(first)
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    assert wait_until(reader, lambda recs: fold(recs) == expected, timeout=120), "the first worker never caught up"
    changelogs = [f"{group}-{t}-changelog" for t in ("versions", "bts", "payouts")]
    settled = _stable(lambda: (first.metric("paysync_stream_processed_total"),
                               [_end_offsets(kafka_bootstrap, t) for t in changelogs]))
    assert wait_for(settled, timeout=60)
    assert first.metric("paysync_stream_processed_total") >= len(copies)
    _assert_one_changelog_message_per_applied_record(kafka_bootstrap, group, first)
    first.kill()
    for topic in (STRIPE_EVENTS.full_name(topic_prefix), STRIPE_BALANCE_TRANSACTIONS.full_name(topic_prefix)):
        committed = _end_offsets(kafka_bootstrap, topic, group)
        assert all(offset < 0 for offset in committed.values()), f"an offset was committed: {committed}"
    before_restart = _end_offsets(kafka_bootstrap, SALESFORCE_UPSERTS.full_name(topic_prefix))

    data_dir = tmp_path / ("w" if restart_dir == "same" else "w2")
    second = StreamWorker(kafka_bootstrap, topic_prefix, app_id, data_dir, tmp_path / "w2.log")
    workers.append(second)

    def replayed_alone(recs: list[dict[str, Any]]) -> bool:
        return fold(_since(reader, before_restart)) == expected

    ok = wait_until(reader, replayed_alone, timeout=150)
    assert ok, diff_states(fold(_since(reader, before_restart)), expected)
    assert fold(reader.records()) == expected
    reader.close()
    # the restarted worker saw the first one's table entries: later copies were still dropped as duplicates
    assert second.metric("paysync_stream_duplicates_dropped_total") > 0


def _assert_one_changelog_message_per_applied_record(bootstrap: str, group: str, worker: StreamWorker) -> None:
    """The group's changelogs are its three tables', and an applied event or balance transaction wrote one
    entry (its `versions` or `bts` one): no event-id table, nothing for a copy or a stale record."""
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert {t for t in topics if t.startswith(f"{group}-") and t.endswith("-changelog")} == {
        f"{group}-{t}-changelog" for t in ("versions", "bts", "payouts")}
    written = sum(sum(_end_offsets(bootstrap, f"{group}-{t}-changelog").values()) for t in ("versions", "bts"))
    applied = sum(worker.metric(f'paysync_stream_applied_total{{input="{name}"}}')  # one label's sample
                  for name in ("events", "balance_transactions"))
    assert written == applied > 0
    assert worker.metric("paysync_stream_duplicates_dropped_total") + worker.metric(
        "paysync_stream_stale_dropped_total") > 0


def _since(reader: Any, offsets: dict[int, int]) -> list[dict[str, Any]]:
    """The records each partition received after `offsets` (the reader reads every partition from 0, in order)."""
    return [r for p in sorted(reader.by_partition) for r in reader.by_partition[p][offsets.get(p, 0):]]
