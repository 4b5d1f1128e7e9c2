"""The Kafka toolkit of the operator tools (`paysync replay`, `paysync dlq`): their settings, offset ranges and
bounds, metadata and group-offset look-ups (`KafkaTool`), bounded reads (`read_ranges`) and in-order copies
through an idempotent producer (`Redriver`).

Ranges are offsets [from, to): `count` is `to - from` (aborted transactions or compaction can make fewer records).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import Field

from paysync.produce import produce_waiting
from paysync.settings import KafkaConnection, PaysyncSettings, TopicSettings
from paysync.topics import ALL_TOPICS


class ToolError(Exception):
    """The request cannot be carried out as asked; the message says why (exit status 1)."""


class OpsSettings(PaysyncSettings):
    """Settings of the operator tools (`paysync replay`, `paysync dlq`)."""

    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")

    ops_idle_timeout_s: float = Field(default=30.0, gt=0, description="give up when a read makes no progress this long")
    ops_request_timeout_s: float = Field(default=15.0, gt=0, description="timeout of one admin/metadata request")
    dlq_resolved_group: str = Field(
        default="paysync-dlq-resolved", description="consumer group whose committed offsets mark dead letters resolved"
    )


@dataclass(frozen=True)
class Range:
    """Offsets [start, end) of one partition; `count` is the number of offsets."""

    partition: int
    start: int
    end: int

    @property
    def count(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class Bound:
    """Where a read starts or stops: exactly one of offset / timestamp_ms / count / edge is set."""

    offset: int | None = None
    timestamp_ms: int | None = None
    count: int | None = None
    edge: str | None = None  # "earliest" | "latest"


def resolve_topic(name: str, prefix: str) -> str:
    """A declared topic's logical name (`stripe.events`) gets the deployment prefix; any other name is literal."""
    return f"{prefix}{name}" if any(t.name == name for t in ALL_TOPICS) else name


def parse_time(text: str) -> int:
    """Epoch milliseconds from an integer (ms) or an ISO-8601 time (`2026-01-31T12:00:00Z`; naive = UTC)."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ToolError(f"not a time: {text!r} (use epoch milliseconds or ISO 8601)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def format_ms(ms: int) -> str:
    """Epoch milliseconds as an ISO-8601 UTC time."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KafkaTool:
    """Metadata, watermark and offset look-ups for one cluster; close() when done."""

    def __init__(self, conf: dict[str, Any], timeout: float) -> None:
        self.conf = dict(conf)
        self.timeout = timeout
        self.admin = AdminClient(dict(conf))
        self.consumer = Consumer(
            {**conf, "group.id": f"paysync-ops-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[int]:
        """The topic's partition ids; raises ToolError when it does not exist."""
        meta = self.admin.list_topics(timeout=self.timeout).topics.get(topic)  # by name could auto-create it
        if meta is None or meta.error is not None or not meta.partitions:
            raise ToolError(f"topic {topic!r} does not exist")
        return sorted(meta.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(low, high): the first offset still stored and the next offset to be written."""
        low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=self.timeout)
        return int(low), int(high)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        """The first offset whose timestamp is >= timestamp_ms, None when there is none yet."""
        [found] = self.consumer.offsets_for_times([TopicPartition(topic, partition, timestamp_ms)], timeout=self.timeout)
        return None if found.offset < 0 else int(found.offset)

    def position(self, topic: str, partition: int, bound: Bound, low: int, high: int, base: int | None = None) -> int:
        """`bound` as an offset within [low, high] (`count` counts from `base`)."""
        if bound.edge == "earliest":
            value = low
        elif bound.edge == "latest":
            value = high
        elif bound.offset is not None:
            value = bound.offset
        elif bound.timestamp_ms is not None:
            found = self.offset_for_time(topic, partition, bound.timestamp_ms)
            value = high if found is None else found
        elif bound.count is not None:
            value = (low if base is None else base) + bound.count
        else:
            value = high
        return min(max(value, low), high)

    def plan(self, topic: str, partitions: Sequence[int] | None, start: Bound, end: Bound) -> list[Range]:
        """Per partition: offsets [start, end), clamped to what the topic holds right now."""
        ranges: list[Range] = []
        for p in partitions if partitions else self.partitions(topic):
            low, high = self.watermarks(topic, p)
            first = self.position(topic, p, start, low, high)
            last = self.position(topic, p, end, low, high, base=first)
            ranges.append(Range(p, first, max(first, last)))
        return ranges

    def group_state(self, group: str) -> str:
        """The consumer group's state name (EMPTY, STABLE, DEAD …)."""
        [fut] = self.admin.describe_consumer_groups([group], request_timeout=self.timeout).values()
        return str(fut.result(self.timeout).state.name)

    def committed(self, group: str, topic: str, partitions: Sequence[int]) -> dict[int, int | None]:
        """The group's committed offset per partition (None = nothing committed)."""
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
        [fut] = self.admin.list_consumer_group_offsets([request], request_timeout=self.timeout).values()
        result = fut.result(self.timeout)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in result.topic_partitions}

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        """Set the group's committed offsets (the group must be inactive); raises on any partition error."""
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())])
        [fut] = self.admin.alter_consumer_group_offsets([request], request_timeout=self.timeout).values()
        result = fut.result(self.timeout)
        failed = [tp for tp in result.topic_partitions if tp.error is not None]
        if failed:
            raise ToolError(f"could not set offsets of {group!r}: {failed[0].error}")


def _range_of(msg: Message, pending: dict[int, Range], topic: str) -> Range | None:
    """The pending range `msg` is a record of, or None: an end-of-partition event or a record at or past its
    range's end closes that range; any other consumer error raises ToolError."""
    part, offset, error = msg.partition(), msg.offset(), msg.error()
    rng = pending.get(part) if part is not None else None
    if error is not None:
        if error.code() != KafkaError._PARTITION_EOF:
            raise ToolError(f"reading {topic}[{part}]: {error}")
        if rng is not None and offset is not None and offset >= rng.end:
            del pending[rng.partition]
        return None
    if rng is None or offset is None:
        return None
    if offset >= rng.end:
        del pending[rng.partition]
        return None
    return rng


def read_ranges(
    conf: dict[str, Any],
    topic: str,
    ranges: Sequence[Range],
    idle_timeout: float,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Message]:
    """Yield every record of `topic` in `ranges` (confluent Message objects), in offset order per partition.

    Reads nothing beyond each range's end; raises ToolError when no record arrives for `idle_timeout`.
    """
    pending = {r.partition: r for r in ranges if r.count > 0}
    if not pending:
        return
    consumer = Consumer({**conf, "group.id": f"paysync-replay-{uuid.uuid4().hex}", "enable.auto.commit": False,
                         "enable.partition.eof": True, "isolation.level": "read_committed"})
    try:
        consumer.assign([TopicPartition(topic, r.partition, r.start) for r in pending.values()])
        active = set(pending)
        seen = 0
        last_progress = time.monotonic()
        while pending:
            batch = consumer.consume(num_messages=500, timeout=0.2)  # returns at 500 or 0.2 s
            if not batch:
                if time.monotonic() - last_progress > idle_timeout:
                    raise ToolError(f"no progress for {idle_timeout:.0f}s reading {topic} partitions {sorted(pending)}")
                continue
            last_progress = time.monotonic()
            for msg in batch:
                rng = _range_of(msg, pending, topic)
                if rng is None:
                    continue
                yield msg
                seen += 1
                if progress is not None:
                    progress(seen)
                if msg.offset() == rng.end - 1:
                    del pending[rng.partition]
            finished = [p for p in active if p not in pending]
            if finished:  # stop fetching what is done; the rest keeps its position
                consumer.pause([TopicPartition(topic, p) for p in finished])
                active.difference_update(finished)
    finally:
        consumer.close()


class Redriver:
    """Produces copies of records, in order, with an idempotent producer; `finish()` flushes and reports."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self._producer = Producer(
            {**conf, "enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4"}
        )
        self.delivered = 0
        self.failures: list[str] = []

    def _report(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failures.append(f"{msg.topic()}[{msg.partition()}]: {err}")
        else:
            self.delivered += 1

    def send(self, topic: str, partition: int | None, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]]) -> None:
        """Queue one record (partition None = by key); blocks briefly when the local queue is full."""
        produce_waiting(self._producer, topic, value, key=key, partition=partition, headers=headers,
                        on_delivery=self._report)
        self._producer.poll(0)

    def finish(self, timeout: float) -> None:
        """Wait for every delivery; raises ToolError when any record was not written."""
        left = self._producer.flush(timeout)
        if left:
            raise ToolError(f"{left} record(s) not confirmed within {timeout:.0f}s")
        if self.failures:
            raise ToolError(f"{len(self.failures)} record(s) failed, first: {self.failures[0]}")
