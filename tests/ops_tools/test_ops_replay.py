"""`paysync replay` on the real broker: exact ranges, time starts, dry runs, consumer-group resets."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ops import replay
from ops.replay import REPLAY_HEADER
from ops_tools_helpers import produce, read_all, run
from paysync.topics import SALESFORCE_UPSERTS, STRIPE_EVENTS, create_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def env(kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Topics created under a unique prefix; the tool's settings point at them."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("PAYSYNC_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("PAYSYNC_OPS_IDLE_TIMEOUT_S", "20")
    create_topics({"bootstrap.servers": kafka_bootstrap}, topic_prefix, partitions=3)
    return kafka_bootstrap


def _seed(bootstrap: str, topic: str, per_partition: int) -> None:
    records = [(p, f"k{p}-{i % 4}".encode(), f"v{p}-{i}".encode()) for p in range(3) for i in range(per_partition)]
    produce(bootstrap, topic, records)


def test_replay_offset_range_of_one_partition_redrives_exactly_that_range(env: str, topic_prefix: str) -> None:
    topic = SALESFORCE_UPSERTS.full_name(topic_prefix)
    _seed(env, topic, 20)

    code, out, err = run(replay.main, ["salesforce.upserts", "-p", "1", "--from-offset", "5", "--to-offset", "12"])

    assert code == 0, err
    assert "re-drove 7 record(s)" in out
    msgs = read_all(env, topic, [0, 1, 2])
    copies = [m for m in msgs if m.offset() >= 20]
    assert all(m.partition() == 1 for m in copies), "copies must go only to the replayed partition"
    assert [m.value() for m in copies] == [f"v1-{i}".encode() for i in range(5, 12)]
    assert [m.key() for m in copies] == [f"k1-{i % 4}".encode() for i in range(5, 12)]
    assert [dict(m.headers())[REPLAY_HEADER] for m in copies] == [f"{topic}/1/{i}".encode() for i in range(5, 12)]
    ends = {p: sum(1 for m in msgs if m.partition() == p) for p in range(3)}
    assert ends == {0: 20, 1: 27, 2: 20}


def test_replay_all_partitions_with_count_to_another_topic(env: str, topic_prefix: str) -> None:
    source = SALESFORCE_UPSERTS.full_name(topic_prefix)
    target = f"{topic_prefix}replay.target"
    admin = AdminClient({"bootstrap.servers": env})
    admin.create_topics([NewTopic(target, 3, 1)])[target].result(30)
    _seed(env, source, 10)

    code, out, err = run(replay.main, [source, "--from-offset", "8", "--count", "5", "--target", target])

    assert code == 0, err
    got = sorted((m.partition(), m.value()) for m in read_all(env, target, [0, 1, 2]))
    assert got == sorted((p, f"v{p}-{i}".encode()) for p in range(3) for i in (8, 9))
    assert len(read_all(env, source, [0, 1, 2])) == 30, "the source topic is untouched"


def test_replay_from_timestamp_starts_at_the_first_record_at_or_after_it(env: str, topic_prefix: str) -> None:
    topic = STRIPE_EVENTS.full_name(topic_prefix)
    base = int(time.time() * 1000) - 3_600_000
    stamps = [base + i * 1000 for i in range(10)]
    produce(env, topic, [(2, b"k", f"e{i}".encode()) for i in range(10)], timestamps=stamps)

    code, out, _ = run(replay.main, ["stripe.events", "-p", "2", "--from-timestamp", str(base + 6500), "--dry-run"])
    assert code == 0
    row = [line.split() for line in out.splitlines() if line.split()[:1] == ["2"]][0]
    assert row == ["2", "7", "10", "3"]

    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 3000) / 1000)) + f".{(base + 3000) % 1000:03d}Z"
    end_iso = str(base + 5000)
    code, out, err = run(replay.main, ["stripe.events", "-p", "2", "--from-timestamp", iso, "--to-timestamp", end_iso])
    assert code == 0, err
    copies = [m for m in read_all(env, topic, [2]) if m.offset() >= 10]
    assert [m.value() for m in copies] == [b"e3", b"e4"]


def test_dry_run_moves_nothing(env: str, topic_prefix: str) -> None:
    topic = SALESFORCE_UPSERTS.full_name(topic_prefix)
    _seed(env, topic, 6)

    code, out, _ = run(replay.main, ["salesforce.upserts", "--from-earliest", "--dry-run"])

    assert code == 0
    assert "would re-drive 18 record(s)" in out
    assert len(read_all(env, topic, [0, 1, 2])) == 18


def test_refuses_without_a_start_and_for_a_missing_topic(env: str, topic_prefix: str) -> None:
    assert run(replay.main, ["salesforce.upserts"])[0] == 1
    code, _, err = run(replay.main, [f"{topic_prefix}no.such.topic", "--from-earliest"])
    assert code == 1 and "does not exist" in err


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)}
    finally:
        c.close()


def test_reset_group_moves_committed_offsets_and_refuses_an_active_group(env: str, topic_prefix: str) -> None:
    topic = STRIPE_EVENTS.full_name(topic_prefix)
    base = int(time.time() * 1000) - 60_000
    produce(env, topic, [(p, b"k", b"v") for p in range(3) for _ in range(10)],
            timestamps=[base + i * 100 for _ in range(3) for i in range(10)])
    group = f"{topic_prefix}streams-{uuid.uuid4().hex[:6]}"

    code, out, err = run(replay.main, ["stripe.events", "--reset-group", group, "--to-latest"])
    assert code == 0, err
    assert _committed(env, group, topic) == {0: 10, 1: 10, 2: 10}

    code, out, _ = run(replay.main, ["stripe.events", "--reset-group", group, "--to-offset", "4", "--dry-run"])
    assert code == 0 and "-6" in out
    assert _committed(env, group, topic) == {0: 10, 1: 10, 2: 10}, "dry run changes nothing"

    code, _, err = run(replay.main, ["stripe.events", "-p", "1", "--reset-group", group, "--to-offset", "4"])
    assert code == 0, err
    assert _committed(env, group, topic) == {0: 10, 1: 4, 2: 10}

    code, _, err = run(replay.main, ["stripe.events", "--reset-group", group, "--to-timestamp", str(base + 250)])
    assert code == 0, err
    assert _committed(env, group, topic) == {0: 3, 1: 3, 2: 3}

    member = Consumer({"bootstrap.servers": env, "group.id": group, "enable.auto.commit": False})
    try:
        member.subscribe([topic])
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(0.2)
        assert member.assignment(), "the member never joined"
        code, _, err = run(replay.main, ["stripe.events", "--reset-group", group, "--to-earliest"])
        assert code == 1 and "STABLE" in err
    finally:
        member.close()
    assert _committed(env, group, topic) == {0: 3, 1: 3, 2: 3}
