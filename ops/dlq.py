"""`paysync dlq list | show | replay | purge`: inspect and re-drive dead letters (`paysync.dlq`).

Dead letters are immutable Kafka records, so this tool keeps its bookkeeping in Kafka too:
- Replayed: after re-producing a letter's `original_value` (with `original_key`, to the original
  topic and partition) the tool appends a MARKER to the dead-letter topic, in the letter's partition:
  a `paysync.DeadLetter` with `stage="ops"`, `error_kind="replayed"`, `error_code="REPLAYED"`, whose
  `topic/partition/offset` point at the letter. A later `replay` skips letters that have a marker
  (`--force` re-drives them anyway); `list` shows them as `replayed` and never lists markers.
  If the re-driven record fails again, its stage dead-letters it anew: a new, open letter.
- Resolved ("purge"): the committed offsets of the consumer group `paysync-dlq-resolved`
  (`PAYSYNC_DLQ_RESOLVED_GROUP`) on the dead-letter topic: every letter below its partition's
  committed offset is resolved. `list` hides resolved letters unless `--all`; nothing is deleted.

Letters are named `PARTITION:OFFSET` of the dead-letter topic. Output passes through
`paysync.logs.scrub`, so secrets and card numbers are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paysync.codec import AvroCodec, CodecError
from paysync.deadletter import dead_letter
from paysync.logs import scrub
from paysync.topics import DEAD_LETTERS
from ops.replay import (
    KafkaTool,
    OpsSettings,
    Range,
    Redriver,
    ReplayError,
    format_ms,
    parse_time,
    read_ranges,
)

MARKER_STAGE = "ops"
MARKER_KIND = "replayed"
MARKER_CODE = "REPLAYED"
DLQ_REPLAY_HEADER = "paysync-dlq-replay-of"
PREVIEW_BYTES = 2048


@dataclass
class Letter:
    """One dead letter as read from the topic, with its bookkeeping status."""

    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any] | None  # None when the value is not a readable DeadLetter
    problem: str | None = None
    replayed_by: str | None = None  # PARTITION:OFFSET of the marker
    resolved: bool = False

    @property
    def ident(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def status(self) -> str:
        return "resolved" if self.resolved else "replayed" if self.replayed_by else "open"

    def field(self, name: str, default: Any = None) -> Any:
        return (self.record or {}).get(name, default)


def _ms(value: Any) -> int | None:
    """A timestamp-millis field (fastavro gives datetimes) as epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value) if isinstance(value, int) else None


def _is_marker(record: dict[str, Any] | None, dlq_topic: str) -> bool:
    return bool(record) and record.get("stage") == MARKER_STAGE and record.get("error_kind") == MARKER_KIND \
        and record.get("topic") == dlq_topic  # type: ignore[union-attr]


def parse_ident(text: str) -> tuple[int, int]:
    """`PARTITION:OFFSET` → (partition, offset)."""
    part, sep, off = text.partition(":")
    if not sep or not part.isdigit() or not off.isdigit():
        raise ReplayError(f"name a dead letter as PARTITION:OFFSET (as `paysync dlq list` prints), not {text!r}")
    return int(part), int(off)


class DeadLetterStore:
    """Reads the dead-letter topic with its replay markers and resolved offsets."""

    def __init__(self, settings: OpsSettings) -> None:
        self.settings = settings
        self.conf = settings.kafka.confluent_config()
        self.topic = DEAD_LETTERS.full_name(settings.topics.prefix)
        self.group = settings.dlq_resolved_group
        self.codec = AvroCodec(settings.kafka.schema_registry_url)
        self.tool = KafkaTool(self.conf, settings.ops_request_timeout_s)

    def close(self) -> None:
        self.tool.close()

    def ranges(self) -> list[Range]:
        """Every stored offset of every partition, as of now."""
        out = []
        for p in self.tool.partitions(self.topic):
            low, high = self.tool.watermarks(self.topic, p)
            out.append(Range(p, low, high))
        return out

    def resolved_offsets(self, partitions: Sequence[int]) -> dict[int, int]:
        """Per partition, the first offset not resolved yet (0 when nothing was purged)."""
        return {p: o or 0 for p, o in self.tool.committed(self.group, self.topic, partitions).items()}

    def letters(self) -> list[Letter]:
        """Every dead letter (markers excluded) in partition, offset order, with status."""
        ranges = self.ranges()
        resolved = self.resolved_offsets([r.partition for r in ranges])
        letters: dict[tuple[int, int], Letter] = {}
        for msg in read_ranges(self.conf, self.topic, ranges, self.settings.ops_idle_timeout_s):
            record: dict[str, Any] | None = None
            problem: str | None = None
            try:
                record = self.codec.decode(msg.value(), DEAD_LETTERS.schema, self.topic)
            except CodecError as exc:
                problem = exc.code
            if _is_marker(record, self.topic):
                target = letters.get((int(record["partition"]), int(record["offset"])))  # type: ignore[index]
                if target is not None:
                    target.replayed_by = f"{msg.partition()}:{msg.offset()}"
                continue
            letters[(msg.partition(), msg.offset())] = Letter(
                msg.partition(), msg.offset(), msg.key(), record, problem,
                resolved=msg.offset() < resolved.get(msg.partition(), 0),
            )
        return [letters[k] for k in sorted(letters)]

    def mark_replayed(self, letters: Sequence[Letter], note: str) -> None:
        """Append a replay marker for each letter, in the letter's partition."""
        out = Redriver(self.conf)
        for letter in letters:
            marker = dead_letter(
                topic=self.topic, partition=letter.partition, offset=letter.offset, stage=MARKER_STAGE,
                error_kind=MARKER_KIND, error_code=MARKER_CODE, message=note, key=letter.key,
                event_id=letter.field("event_id"), object_id=letter.field("object_id"),
            )
            out.send(self.topic, letter.partition, letter.key, self.codec.encode(DEAD_LETTERS.schema, marker), [])
        out.finish(max(self.settings.ops_idle_timeout_s, 30.0))

    def resolve(self, offsets: dict[int, int]) -> None:
        """Commit resolved offsets (first unresolved offset per partition)."""
        self.tool.commit(self.group, self.topic, offsets)


# Presentation ------------------------------------------------------------------------------------


def summary(letter: Letter) -> dict[str, Any]:
    """The list view of a letter as plain JSON-able values (message scrubbed)."""
    last = _ms(letter.field("last_failure_at"))
    return {
        "id": letter.ident,
        "time": format_ms(last) if last is not None else None,
        "stage": letter.field("stage"),
        "kind": letter.field("error_kind"),
        "code": letter.field("error_code", letter.problem),
        "origin": {"topic": letter.field("topic"), "partition": letter.field("partition"),
                   "offset": letter.field("offset")},
        "event_id": letter.field("event_id"),
        "object_id": letter.field("object_id"),
        "attempts": letter.field("attempts"),
        "status": letter.status,
        "replayed_by": letter.replayed_by,
        "message": scrub(letter.field("message") or (f"unreadable dead letter: {letter.problem}" if letter.problem else "")),
    }


def _plain(value: Any) -> Any:
    """Avro-decoded values made JSON-able: bytes as UTF-8 text (else hex), datetimes as ISO."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": bytes(value).hex()}
        try:
            return json.loads(text)
        except ValueError:
            return text
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def preview(data: bytes | None, codec: AvroCodec) -> dict[str, Any]:
    """The original value for display: decoded when it is Avro, else a UTF-8 or hex preview."""
    if data is None:
        return {"format": "none"}
    try:
        return {"format": "avro", "record": _plain(codec.decode(data))}
    except CodecError as exc:
        reason = exc.code
    head = data[:PREVIEW_BYTES]
    try:
        return {"format": "text", "not_avro": reason, "bytes": len(data), "text": head.decode("utf-8")}
    except UnicodeDecodeError:
        return {"format": "binary", "not_avro": reason, "bytes": len(data), "hex": head[:256].hex()}


def detail(letter: Letter, codec: AvroCodec) -> dict[str, Any]:
    """Everything about one letter: the list view plus the original key and decoded value."""
    out = summary(letter)
    out["first_failure"] = format_ms(ms) if (ms := _ms(letter.field("first_failure_at"))) is not None else None
    key = letter.field("original_key")
    out["original_key"] = _plain(key) if key is not None else None
    out["original_value"] = preview(letter.field("original_value"), codec)
    return out


def _table(rows: Sequence[dict[str, Any]], out: Any) -> None:
    head = f"{'ID':<10} {'TIME':<24} {'STAGE':<9} {'CODE':<24} {'ORIGIN':<36} {'EVENT ID':<30} {'STATUS':<8} MESSAGE"
    out.write(head + "\n")
    for r in rows:
        o = r["origin"]
        origin = f"{o['topic']}/{o['partition']}/{o['offset']}"
        msg = (r["message"] or "").replace("\n", " ")
        out.write(
            f"{r['id']:<10} {r['time'] or '-':<24} {r['stage'] or '-':<9} {str(r['code'] or '-')[:24]:<24} "
            f"{origin[:36]:<36} {(r['event_id'] or '-')[:30]:<30} {r['status']:<8} {msg[:80]}\n"
        )


def _select(letters: Sequence[Letter], args: argparse.Namespace) -> list[Letter]:
    since = parse_time(args.since) if getattr(args, "since", None) else None
    ids = {parse_ident(i) for i in (getattr(args, "id", None) or [])}
    chosen = []
    for letter in letters:
        if ids and (letter.partition, letter.offset) not in ids:
            continue
        if args.code and letter.field("error_code", letter.problem) not in args.code:
            continue
        if args.stage and letter.field("stage") not in args.stage:
            continue
        if since is not None and (_ms(letter.field("last_failure_at")) or 0) < since:
            continue
        chosen.append(letter)
    return chosen


# Commands ----------------------------------------------------------------------------------------


def cmd_list(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    letters = [x for x in _select(store.letters(), args) if args.all or not x.resolved]
    if args.limit:
        letters = letters[-args.limit:]
    rows = [summary(x) for x in letters]
    if args.json:
        out.write(scrub(json.dumps(rows, ensure_ascii=False, default=str)) + "\n")
    else:
        _table(rows, out)
        out.write(f"{len(rows)} dead letter(s)" + ("" if args.all else " (resolved ones hidden; --all shows them)") + "\n")
    return 0


def cmd_show(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    wanted = parse_ident(args.ident)
    for letter in store.letters():
        if (letter.partition, letter.offset) == wanted:
            out.write(scrub(json.dumps(detail(letter, store.codec), indent=2, ensure_ascii=False, default=str)) + "\n")
            return 0
    raise ReplayError(f"no dead letter at {args.ident} of {store.topic} (markers are not dead letters)")


def cmd_replay(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    if not (args.all or args.code or args.stage or args.id):
        raise ReplayError("choose what to replay: --id P:O, --code CODE, --stage STAGE, or --all")
    named = {parse_ident(i) for i in (args.id or [])}
    chosen: list[Letter] = []
    for letter in _select(store.letters(), args):
        explicit = (letter.partition, letter.offset) in named
        if letter.record is None:
            out.write(f"skip {letter.ident}: unreadable dead letter ({letter.problem})\n")
        elif letter.field("original_value") is None:
            out.write(f"skip {letter.ident}: it carries no original value\n")
        elif letter.resolved and not explicit:
            continue
        elif letter.replayed_by and not args.force:
            out.write(f"skip {letter.ident}: already replayed (marker {letter.replayed_by}; --force re-drives it)\n")
        else:
            chosen.append(letter)
    for letter in chosen:
        out.write(f"{'would replay' if args.dry_run else 'replay'} {letter.ident} -> "
                  f"{letter.field('topic')}/{letter.field('partition')} ({letter.field('error_code')})\n")
    if args.dry_run or not chosen:
        out.write(f"{len(chosen)} dead letter(s) {'would be ' if args.dry_run else ''}replayed\n")
        return 0
    sender = Redriver(store.conf)
    partitions: dict[str, set[int]] = {}
    for letter in chosen:
        topic = str(letter.field("topic"))
        if topic not in partitions:
            partitions[topic] = set(store.tool.partitions(topic))
        part = int(letter.field("partition"))
        header = (DLQ_REPLAY_HEADER, f"{store.topic}/{letter.ident}".encode())
        sender.send(topic, part if part in partitions[topic] else None, letter.field("original_key"),
                    letter.field("original_value"), [header])
    sender.finish(max(store.settings.ops_idle_timeout_s, 30.0))
    store.mark_replayed(chosen, "replayed by paysync dlq replay")
    out.write(f"{len(chosen)} dead letter(s) replayed\n")
    return 0


def cmd_purge(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    if not (args.all or args.through or args.replayed):
        raise ReplayError("choose what to resolve: --through P:O, --replayed, or --all")
    ranges = store.ranges()
    current = store.resolved_offsets([r.partition for r in ranges])
    wanted = dict(current)
    if args.all:
        wanted = {r.partition: r.end for r in ranges}
    for ident in args.through or []:
        part, off = parse_ident(ident)
        if part not in wanted:
            raise ReplayError(f"{store.topic} has no partition {part}")
        wanted[part] = max(wanted[part], off + 1)
    if args.replayed:  # advance over the unbroken run of replayed letters (markers are skipped over too)
        by_part: dict[int, list[Letter]] = {}
        for letter in store.letters():
            by_part.setdefault(letter.partition, []).append(letter)
        ends = {r.partition: r.end for r in ranges}
        for part, letters in by_part.items():
            pos = wanted[part]
            for letter in letters:
                if letter.offset < pos:
                    continue
                if not letter.replayed_by:
                    pos = letter.offset
                    break
                pos = letter.offset + 1
            else:
                pos = max(pos, ends[part])
            wanted[part] = max(wanted[part], pos)
    moves = {p: o for p, o in wanted.items() if o > current.get(p, 0)}
    out.write(f"{'partition':>9}  {'resolved before':>15}  {'now':>10}\n")
    for p in sorted(wanted):
        out.write(f"{p:>9}  {current.get(p, 0):>15}  {max(wanted[p], current.get(p, 0)):>10}\n")
    if args.dry_run or not moves:
        out.write("dry run: nothing changed\n" if args.dry_run else "nothing to resolve\n")
        return 0
    store.resolve({p: max(o, current.get(p, 0)) for p, o in wanted.items()})
    out.write(f"resolved offsets committed for group {store.group}\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync dlq", description="Inspect, replay and resolve dead letters.")
    sub = p.add_subparsers(dest="action", required=True)

    def filters(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--code", action="append", help="only this error code (repeatable)")
        sp.add_argument("--stage", action="append", help="only this stage: producers, streams, sink … (repeatable)")
        sp.add_argument("--since", help="only letters that last failed at or after this time (epoch ms or ISO 8601)")

    ls = sub.add_parser("list", help="dead letters with reason and origin")
    filters(ls)
    ls.add_argument("--all", action="store_true", help="include resolved (purged) letters")
    ls.add_argument("--json", action="store_true", help="JSON array instead of a table")
    ls.add_argument("--limit", type=int, help="only the last N")
    sh = sub.add_parser("show", help="one letter in full, its original value decoded")
    sh.add_argument("ident", metavar="PARTITION:OFFSET")
    rp = sub.add_parser("replay", help="re-produce selected letters' original records to their topic")
    filters(rp)
    rp.add_argument("--id", action="append", metavar="P:O", help="this letter (repeatable)")
    rp.add_argument("--all", action="store_true", help="every open letter")
    rp.add_argument("--force", action="store_true", help="also letters replayed before")
    rp.add_argument("--dry-run", action="store_true", help="print what would be replayed")
    pg = sub.add_parser("purge", help="mark letters resolved (commits group offsets; deletes nothing)")
    pg.add_argument("--through", action="append", metavar="P:O", help="resolve partition P up to offset O inclusive")
    pg.add_argument("--replayed", action="store_true", help="resolve each partition's leading run of replayed letters")
    pg.add_argument("--all", action="store_true", help="resolve every letter stored now")
    pg.add_argument("--dry-run", action="store_true", help="print what would be resolved")
    return p


COMMANDS = {"list": cmd_list, "show": cmd_show, "replay": cmd_replay, "purge": cmd_purge}


def main(argv: list[str], stdout: Any = None, stderr: Any = None) -> int:
    """Entry point of `paysync dlq`; 0 on success, 1 when refused or failed, 2 on bad arguments."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    from confluent_kafka import KafkaException

    args = _parser().parse_args(argv)
    store = DeadLetterStore(OpsSettings())
    try:
        return COMMANDS[args.action](store, args, out)
    except (ReplayError, KafkaException) as exc:
        err.write(f"paysync dlq: {exc}\n")
        return 1
    finally:
        store.close()
