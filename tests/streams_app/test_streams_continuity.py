"""The continuity guard (`streams.continuity`): holes the consumer leaves are found and read from the real broker."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from paysync.net import free_port
from streams.continuity import Continuity, Guard, Hole, TailWatch
from streams.range_reader import RangeReader, RangeReadError, RawRecord

TP = ("t.stripe.events", 1)


def test_the_first_record_of_an_assignment_is_checked_against_where_reading_began() -> None:
    c = Continuity()
    assert c.hole(TP, 5, start=5) is None
    assert c.hole(TP, 3, start=5) is None  # below the start: already committed, re-read
    assert c.hole(TP, 8, start=5) == Hole(TP, 5, 8)
    assert c.hole(TP, 8, start=None) is None  # unknown start: nothing can be said


def test_each_handled_record_moves_the_next_offset_and_re_reads_do_not_move_it_back() -> None:
    c = Continuity()
    for offset in range(0, 40):
        assert c.hole(TP, offset, start=0) is None
        c.handled(TP, offset)
    assert c.knows(TP)
    assert c.hole(TP, 41) == Hole(TP, 40, 41)  # the record at 40 never came
    c.handled(TP, 20)  # Faust reading again after a seek
    assert c.hole(TP, 40) is None and c.hole(TP, 21) is None
    assert c.hole(TP, 42) == Hole(TP, 40, 42)


def test_a_new_assignment_forgets_every_partition_and_a_revocation_forgets_its_own() -> None:
    c = Continuity()
    other = ("t.stripe.events", 2)
    c.handled(TP, 10)
    c.handled(other, 3)
    c.revoke([other])
    assert c.knows(TP) and not c.knows(other)
    c.assign()
    assert not c.knows(TP)
    assert c.hole(TP, 30, start=25) == Hole(TP, 25, 30)


@pytest.fixture
def filled_topic(kafka_bootstrap: str, topic_prefix: str) -> str:
    """A one-partition topic holding ten records, key `k<i>`, value `v<i>`, at offsets 0..9."""
    topic = f"{topic_prefix}continuity"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for i in range(10):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    return topic


def _record(i: int) -> RawRecord:
    return RawRecord(i, f"k{i}".encode(), f"v{i}".encode())


@pytest.mark.kafka
def test_the_reader_returns_exactly_the_range_and_stops_at_the_end_of_the_partition(
    kafka_bootstrap: str, filled_topic: str,
) -> None:
    reader = RangeReader({"bootstrap.servers": kafka_bootstrap}, group_id="range-reader-test", timeout_s=20)
    try:
        assert reader.read(filled_topic, 0, 3, 7) == [_record(i) for i in range(3, 7)]
        assert reader.read(filled_topic, 0, 0, 1) == [_record(0)]
        assert reader.read(filled_topic, 0, 8, 50) == [_record(8), _record(9)]  # ends at the end of the log
        assert reader.read(filled_topic, 0, 5, 5) == []
    finally:
        reader.close()


@pytest.mark.kafka
def test_a_range_starting_before_the_log_start_is_read_from_the_log_start(
    kafka_bootstrap: str, filled_topic: str,
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [deleted] = admin.delete_records([TopicPartition(filled_topic, 0, 4)]).values()
    assert deleted.result(30).low_watermark == 4  # offsets 0..3 are gone: the log starts at 4
    reader = RangeReader({"bootstrap.servers": kafka_bootstrap}, group_id="range-reader-test", timeout_s=20)
    try:
        assert reader.read(filled_topic, 0, 0, 4) == []  # the first record delivered after a fresh start
        assert reader.read(filled_topic, 0, 0, 7) == [_record(4), _record(5), _record(6)]
    finally:
        reader.close()


@pytest.mark.kafka
def test_the_guard_hands_back_what_the_consumer_skipped_before_the_record_that_revealed_it(
    kafka_bootstrap: str, filled_topic: str,
) -> None:
    reader = RangeReader({"bootstrap.servers": kafka_bootstrap}, group_id="range-reader-test", timeout_s=20)
    committed: dict[tuple[str, int], int] = {}

    guard = Guard(Continuity(), reader, lambda tp: committed.get(tp, 0))  # nothing committed: the log start
    tp = (filled_topic, 0)

    async def deliver(offsets: list[int]) -> list[int]:
        """What a worker hands to its processor when the consumer delivers `offsets`."""
        handed: list[int] = []
        for offset in offsets:
            missing = await guard.missing(tp, offset)
            for record in missing:
                assert record == _record(record.offset)
                handed.append(record.offset)
                guard.continuity.handled(tp, record.offset)
            handed.append(offset)
            guard.continuity.handled(tp, offset)
        return handed

    try:
        # nothing committed: reading began at the log start, so a first record at 2 reveals 0 and 1;
        # 4, 5, 6 delivered again after 6 (a seek back) are handed on as they come: the processor knows them
        assert asyncio.run(deliver([2, 3, 6, 4, 5, 6, 9])) == [0, 1, 2, 3, 4, 5, 6, 4, 5, 6, 7, 8, 9]
        # a new assignment resuming from a committed offset: the hole starts there
        guard.continuity.assign()
        committed[tp] = 5
        assert asyncio.run(deliver([8, 9])) == [5, 6, 7, 8, 9]
    finally:
        reader.close()


def test_an_unreachable_broker_is_a_read_error_not_an_empty_range() -> None:
    reader = RangeReader({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, group_id="range-reader-test",
                         timeout_s=2)
    try:
        with pytest.raises(RangeReadError):
            reader.read("t.stripe.events", 0, 0, 5)
    finally:
        reader.close()


def test_a_tail_that_waits_with_nothing_handled_is_reported_once_per_period() -> None:
    tails = TailWatch(after_s=15)
    other = ("t.stripe.events", 2)
    assert tails.check(0.0, {TP: 23, other: 5}, {TP: 26, other: 5}) == []
    assert tails.check(10.0, {TP: 23, other: 5}, {TP: 26, other: 9}) == []
    assert tails.check(15.0, {TP: 23, other: 5}, {TP: 26, other: 9}) == [(TP, 23)]
    assert tails.check(20.0, {TP: 23, other: 5}, {TP: 26, other: 9}) == []  # the clock restarted at the report
    assert tails.check(25.0, {TP: 23, other: 5}, {TP: 26, other: 9}) == [(other, 5)]
    assert tails.check(30.0, {TP: 23}, {TP: 26}) == [(TP, 23)]


def test_progress_a_caught_up_partition_an_unknown_position_or_a_reset_restart_the_clock() -> None:
    tails = TailWatch(after_s=15)
    assert tails.check(0.0, {TP: 23}, {TP: 26}) == []
    assert tails.check(14.0, {TP: 24}, {TP: 26}) == []  # progress
    assert tails.check(28.0, {TP: 26}, {TP: 26}) == []  # caught up
    assert tails.check(30.0, {TP: 26}, {TP: 30}) == []
    assert tails.check(44.0, {TP: None}, {TP: 30}) == []  # unknown position
    assert tails.check(45.0, {TP: 26}, {TP: None}) == []  # unknown highwater
    assert tails.check(59.0, {TP: 26}, {TP: 30}) == []
    tails.reset()
    assert tails.check(70.0, {TP: 26}, {TP: 30}) == []
    assert tails.check(85.0, {TP: 26}, {TP: 30}) == [(TP, 26)]
    with pytest.raises(ValueError):
        TailWatch(after_s=0)
