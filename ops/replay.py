"""`paysync replay`: re-drive a topic's records, or move a consumer group's committed offsets.

Re-drive: copy the records of a topic (all partitions or `--partition`) from a start (offset, time or
earliest) up to a bound (end offset, time, count, or the end as it was when the command started)
back into the topic — or into `--target` — with the same key, value and headers, to the SAME
partition number, in order, through an idempotent producer. Each copy carries a `paysync-replay-of`
header (`topic/partition/offset`). The end is snapshotted before anything is produced, so
re-driving a topic into itself stops where it started. Downstream is idempotent: upserts by
external id (`salesforce.upserts`) land again harmlessly; `stripe.events` copies are dropped by the
streams' event-id dedupe unless the streams' consumer group is reset instead (`--reset-group`).

Reset: `--reset-group GROUP` sets the group's committed offsets on the topic (to an offset, a time,
earliest or latest); the group must have no active member.

`--dry-run` prints, per partition, what would move, and changes nothing. Ranges are offsets
[from, to): `count` is `to - from` (aborted transactions or compaction can make fewer records).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import Field

from paysync.settings import KafkaConnection, PaysyncSettings, TopicSettings
from paysync.topics import ALL_TOPICS

REPLAY_HEADER = "paysync-replay-of"
INACTIVE_GROUP_STATES = frozenset({"EMPTY", "DEAD", "UNKNOWN"})


class ReplayError(Exception):
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
        raise ReplayError(f"not a time: {text!r} (use epoch milliseconds or ISO 8601)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def format_ms(ms: int) -> str:
    """Epoch milliseconds as an ISO-8601 UTC time."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _err(stderr: Any, text: str) -> None:
    stderr.write(text + "\n")
    stderr.flush()


class KafkaTool:
    """Metadata, watermark and offset look-ups for one cluster; close() when done."""

    def __init__(self, conf: dict[str, Any], timeout: float) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient

        self.conf = dict(conf)
        self.timeout = timeout
        self.admin = AdminClient(dict(conf))
        self.consumer = Consumer(
            {**conf, "group.id": f"paysync-ops-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )

    def close(self) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[int]:
        """The topic's partition ids; raises ReplayError when it does not exist."""
        meta = self.admin.list_topics(timeout=self.timeout).topics.get(topic)  # by name could auto-create it
        if meta is None or meta.error is not None or not meta.partitions:
            raise ReplayError(f"topic {topic!r} does not exist")
        return sorted(meta.partitions)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(low, high): the first offset still stored and the next offset to be written."""
        from confluent_kafka import TopicPartition

        low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=self.timeout)
        return int(low), int(high)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> int | None:
        """The first offset whose timestamp is >= timestamp_ms, None when there is none yet."""
        from confluent_kafka import TopicPartition

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
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
        [fut] = self.admin.list_consumer_group_offsets([request], request_timeout=self.timeout).values()
        result = fut.result(self.timeout)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in result.topic_partitions}

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        """Set the group's committed offsets (the group must be inactive); raises on any partition error."""
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())])
        [fut] = self.admin.alter_consumer_group_offsets([request], request_timeout=self.timeout).values()
        result = fut.result(self.timeout)
        failed = [tp for tp in result.topic_partitions if tp.error is not None]
        if failed:
            raise ReplayError(f"could not set offsets of {group!r}: {failed[0].error}")


def read_ranges(
    conf: dict[str, Any],
    topic: str,
    ranges: Sequence[Range],
    idle_timeout: float,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Any]:
    """Yield every record of `topic` in `ranges` (confluent Message objects), in offset order per partition.

    Reads nothing beyond each range's end; raises ReplayError when no record arrives for `idle_timeout`.
    """
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    pending = {r.partition: r for r in ranges if r.count > 0}
    if not pending:
        return
    consumer = Consumer(
        {
            **conf,
            "group.id": f"paysync-replay-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, r.partition, r.start) for r in pending.values()])
        active = set(pending)
        seen = 0
        last_progress = time.monotonic()
        while pending:
            batch = consumer.consume(num_messages=500, timeout=0.2)  # returns at 500 or 0.2 s
            if not batch:
                if time.monotonic() - last_progress > idle_timeout:
                    raise ReplayError(f"no progress for {idle_timeout:.0f}s reading {topic} partitions {sorted(pending)}")
                continue
            last_progress = time.monotonic()
            for msg in batch:
                part = msg.partition()
                rng = pending.get(part)
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        if rng is not None and msg.offset() >= rng.end:
                            del pending[part]
                        continue
                    raise ReplayError(f"reading {topic}[{part}]: {msg.error()}")
                if rng is None:
                    continue
                if msg.offset() >= rng.end:
                    del pending[part]
                    continue
                yield msg
                seen += 1
                if progress is not None:
                    progress(seen)
                if msg.offset() == rng.end - 1:
                    del pending[part]
            finished = [p for p in active if p not in pending]
            if finished:  # stop fetching what is done; the rest keeps its position
                consumer.pause([TopicPartition(topic, p) for p in finished])
                active.difference_update(finished)
    finally:
        consumer.close()


class Redriver:
    """Produces copies of records, in order, with an idempotent producer; `finish()` flushes and reports."""

    def __init__(self, conf: dict[str, Any]) -> None:
        from confluent_kafka import Producer

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
        kwargs: dict[str, Any] = {"key": key, "value": value, "headers": headers, "on_delivery": self._report}
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                break
            except BufferError:
                self._producer.poll(0.1)
        self._producer.poll(0)

    def finish(self, timeout: float) -> None:
        """Wait for every delivery; raises ReplayError when any record was not written."""
        left = self._producer.flush(timeout)
        if left:
            raise ReplayError(f"{left} record(s) not confirmed within {timeout:.0f}s")
        if self.failures:
            raise ReplayError(f"{len(self.failures)} record(s) failed, first: {self.failures[0]}")


def redrive(
    conf: dict[str, Any],
    source: str,
    ranges: Sequence[Range],
    target: str,
    idle_timeout: float,
    stderr: Any = None,
) -> int:
    """Copy every record in `ranges` of `source` to the same partition of `target`; returns how many."""
    total = sum(r.count for r in ranges)
    out = Redriver(conf)
    last_note = [time.monotonic()]

    def progress(seen: int) -> None:
        if stderr is not None and time.monotonic() - last_note[0] > 2.0:
            last_note[0] = time.monotonic()
            _err(stderr, f"replay: {seen}/{total} records")

    for msg in read_ranges(conf, source, ranges, idle_timeout, progress):
        headers = [(k, v if v is not None else b"") for k, v in (msg.headers() or []) if k != REPLAY_HEADER]
        headers.append((REPLAY_HEADER, f"{source}/{msg.partition()}/{msg.offset()}".encode()))
        out.send(target, msg.partition(), msg.key(), msg.value(), headers)
    out.finish(max(idle_timeout, 30.0))
    return out.delivered


def _bound(offset: int | None, ts: str | None, count: int | None, edge: str | None) -> Bound:
    return Bound(offset=offset, timestamp_ms=parse_time(ts) if ts else None, count=count, edge=edge)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="paysync replay",
        description="Re-drive a topic's records from an offset or a time, or reset a consumer group's offsets.",
        epilog="Topic names of paysync's own topics (stripe.events, salesforce.upserts …) get PAYSYNC_TOPIC_PREFIX.",
    )
    p.add_argument("topic", help="the topic to read (or whose group offsets to reset)")
    p.add_argument("--partition", "-p", type=int, action="append", help="only this partition (repeatable); default all")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from-offset", type=int, help="first offset to re-drive (per partition)")
    start.add_argument("--from-timestamp", help="first record at or after this time (epoch ms or ISO 8601)")
    start.add_argument("--from-earliest", action="store_true", help="from the oldest stored record")
    end = p.add_mutually_exclusive_group()
    end.add_argument("--to-offset", type=int, help="stop before this offset (exclusive); with --reset-group: the new offset")
    end.add_argument("--to-timestamp", help="stop before the first record at or after this time; with --reset-group: move there")
    end.add_argument("--count", type=int, help="at most this many offsets per partition")
    end.add_argument("--to-earliest", action="store_true", help="--reset-group only: to the oldest stored record")
    end.add_argument("--to-latest", action="store_true", help="--reset-group only: to the end (skip everything)")
    p.add_argument("--target", help="produce the copies to this topic instead (same partition numbers)")
    p.add_argument("--reset-group", metavar="GROUP", help="instead of re-driving, move GROUP's committed offsets")
    p.add_argument("--dry-run", action="store_true", help="print what would move; change nothing")
    return p


def _print_ranges(ranges: Sequence[Range], out: Any) -> None:
    out.write(f"{'partition':>9}  {'from':>12}  {'to':>12}  {'count':>10}\n")
    for r in ranges:
        out.write(f"{r.partition:>9}  {r.start:>12}  {r.end:>12}  {r.count:>10}\n")
    out.write(f"{'total':>9}  {'':>12}  {'':>12}  {sum(r.count for r in ranges):>10}\n")


def reset_group(tool: KafkaTool, group: str, topic: str, partitions: Sequence[int] | None, to: Bound,
                dry_run: bool, out: Any) -> dict[int, int]:
    """Move `group`'s committed offsets on `topic` to `to`; refuses while the group has active members."""
    state = tool.group_state(group)
    if state not in INACTIVE_GROUP_STATES:
        raise ReplayError(f"consumer group {group!r} is {state}: stop its members before resetting offsets")
    parts = list(partitions) if partitions else tool.partitions(topic)
    current = tool.committed(group, topic, parts)
    wanted: dict[int, int] = {}
    for p in parts:
        low, high = tool.watermarks(topic, p)
        wanted[p] = tool.position(topic, p, to, low, high)
    out.write(f"{'partition':>9}  {'committed':>12}  {'new':>12}  {'delta':>10}\n")
    for p in parts:
        cur = current.get(p)
        delta = "" if cur is None else f"{wanted[p] - cur:+d}"
        out.write(f"{p:>9}  {'-' if cur is None else cur:>12}  {wanted[p]:>12}  {delta:>10}\n")
    if not dry_run:
        tool.commit(group, topic, wanted)
    return wanted


def main(argv: list[str], stdout: Any = None, stderr: Any = None) -> int:
    """Entry point of `paysync replay`; 0 on success, 1 when refused or failed, 2 on bad arguments."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    from confluent_kafka import KafkaException

    args = _parser().parse_args(argv)
    settings = OpsSettings()
    conf = settings.kafka.confluent_config()
    topic = resolve_topic(args.topic, settings.topics.prefix)
    tool = KafkaTool(conf, settings.ops_request_timeout_s)
    try:
        if args.reset_group:
            if args.count is not None or args.target or args.from_offset is not None or args.from_timestamp \
                    or args.from_earliest:
                raise ReplayError("--reset-group takes only --to-offset/--to-timestamp/--to-earliest/--to-latest")
            to = _bound(args.to_offset, args.to_timestamp, None,
                        "earliest" if args.to_earliest else "latest" if args.to_latest else None)
            if to == Bound():
                raise ReplayError("--reset-group needs --to-offset, --to-timestamp, --to-earliest or --to-latest")
            reset_group(tool, args.reset_group, topic, args.partition, to, args.dry_run, out)
            out.write(("would move" if args.dry_run else "moved") + f" group {args.reset_group} on {topic}\n")
            return 0
        if args.to_earliest or args.to_latest:
            raise ReplayError("--to-earliest/--to-latest apply to --reset-group only")
        if args.from_offset is None and not args.from_timestamp and not args.from_earliest:
            raise ReplayError("say where to start: --from-offset, --from-timestamp or --from-earliest")
        start = _bound(args.from_offset, args.from_timestamp, None, "earliest" if args.from_earliest else None)
        end = _bound(args.to_offset, args.to_timestamp, args.count, None)
        ranges = tool.plan(topic, args.partition, start, end)
        target = resolve_topic(args.target, settings.topics.prefix) if args.target else topic
        if target != topic:
            missing = {r.partition for r in ranges} - set(tool.partitions(target))
            if missing:
                raise ReplayError(f"target {target!r} has no partition(s) {sorted(missing)}")
        _print_ranges(ranges, out)
        if args.dry_run:
            out.write(f"dry run: would re-drive {sum(r.count for r in ranges)} record(s) of {topic} into {target}\n")
            return 0
        done = redrive(conf, topic, ranges, target, settings.ops_idle_timeout_s, err)
        out.write(f"re-drove {done} record(s) of {topic} into {target}\n")
        return 0
    except (ReplayError, KafkaException) as exc:
        _err(err, f"paysync replay: {exc}")
        return 1
    finally:
        tool.close()
