"""`paysync replay`: re-drive a topic's records, or move a consumer group's committed offsets.

Re-drive: copy the records of a topic (all partitions or `--partition`) from a start (offset, time or
earliest) up to a bound (end offset, time, count, or the end as it was when the command started)
back into the topic — or into `--target` — with the same key, value and headers, to the SAME
partition number, in order, through an idempotent producer. Each copy carries a `paysync-replay-of`
header (`topic/partition/offset`). The end is snapshotted before anything is produced, so
re-driving a topic into itself stops where it started. Downstream is idempotent: upserts by
external id (`salesforce.upserts`) land again harmlessly; `stripe.events` copies are dropped by the
streams as copies of events already applied unless the streams' consumer group is reset instead (`--reset-group`).

Reset: `--reset-group GROUP` sets the group's committed offsets on the topic (to an offset, a time,
earliest or latest); the group must have no active member.

`--dry-run` prints, per partition, what would move, and changes nothing. Ranges are offsets
[from, to): `count` is `to - from` (aborted transactions or compaction can make fewer records).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from ops.kafka_toolkit import (Bound, KafkaTool, OpsSettings, Range, Redriver, ToolError, parse_time, read_ranges,
                               resolve_topic)

REPLAY_HEADER = "paysync-replay-of"
INACTIVE_GROUP_STATES = frozenset({"EMPTY", "DEAD", "UNKNOWN"})


def _err(stderr: Any, text: str) -> None:
    stderr.write(text + "\n")
    stderr.flush()


def _copied_headers(headers: Any) -> list[tuple[str, bytes]]:
    """A record's headers for its copy: an earlier copy's replay header dropped, a null value as empty bytes."""
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(k, b"" if v is None else v.encode() if isinstance(v, str) else bytes(v))
            for k, v in pairs if k != REPLAY_HEADER]


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
        headers = _copied_headers(msg.headers() or [])
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
        raise ToolError(f"consumer group {group!r} is {state}: stop its members before resetting offsets")
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


def _reset_command(tool: KafkaTool, topic: str, args: argparse.Namespace, out: Any) -> int:
    """`--reset-group GROUP`: only `--to-*` bounds apply."""
    if args.count is not None or args.target or args.from_offset is not None or args.from_timestamp \
            or args.from_earliest:
        raise ToolError("--reset-group takes only --to-offset/--to-timestamp/--to-earliest/--to-latest")
    to = _bound(args.to_offset, args.to_timestamp, None,
                "earliest" if args.to_earliest else "latest" if args.to_latest else None)
    if to == Bound():
        raise ToolError("--reset-group needs --to-offset, --to-timestamp, --to-earliest or --to-latest")
    reset_group(tool, args.reset_group, topic, args.partition, to, args.dry_run, out)
    out.write(("would move" if args.dry_run else "moved") + f" group {args.reset_group} on {topic}\n")
    return 0


def _redrive_command(tool: KafkaTool, settings: OpsSettings, topic: str, args: argparse.Namespace, out: Any,
                     err: Any) -> int:
    """Re-drive: plan the ranges, check the target's partitions, print the plan, copy unless `--dry-run`."""
    if args.to_earliest or args.to_latest:
        raise ToolError("--to-earliest/--to-latest apply to --reset-group only")
    if args.from_offset is None and not args.from_timestamp and not args.from_earliest:
        raise ToolError("say where to start: --from-offset, --from-timestamp or --from-earliest")
    start = _bound(args.from_offset, args.from_timestamp, None, "earliest" if args.from_earliest else None)
    end = _bound(args.to_offset, args.to_timestamp, args.count, None)
    ranges = tool.plan(topic, args.partition, start, end)
    target = resolve_topic(args.target, settings.topics.prefix) if args.target else topic
    if target != topic:
        missing = {r.partition for r in ranges} - set(tool.partitions(target))
        if missing:
            raise ToolError(f"target {target!r} has no partition(s) {sorted(missing)}")
    _print_ranges(ranges, out)
    if args.dry_run:
        out.write(f"dry run: would re-drive {sum(r.count for r in ranges)} record(s) of {topic} into {target}\n")
        return 0
    done = redrive(tool.conf, topic, ranges, target, settings.ops_idle_timeout_s, err)
    out.write(f"re-drove {done} record(s) of {topic} into {target}\n")
    return 0


def main(argv: list[str], stdout: Any = None, stderr: Any = None) -> int:
    """Entry point of `paysync replay`; 0 on success, 1 when refused or failed, 2 on bad arguments."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    from confluent_kafka import KafkaException

    args = _parser().parse_args(argv)
    settings = OpsSettings()
    topic = resolve_topic(args.topic, settings.topics.prefix)
    tool = KafkaTool(settings.kafka.confluent_config(), settings.ops_request_timeout_s)
    try:
        if args.reset_group:
            return _reset_command(tool, topic, args, out)
        return _redrive_command(tool, settings, topic, args, out, err)
    except (ToolError, KafkaException) as exc:
        _err(err, f"paysync replay: {exc}")
        return 1
    finally:
        tool.close()
