"""`paysync dlq list | show | replay | purge`: inspect and re-drive dead letters (`paysync.dlq`).

Dead letters are immutable Kafka records, so this tool keeps its bookkeeping in Kafka too:
- Replayed: after re-producing a letter's `original_value` (with `original_key`, to the original
  topic and partition) the tool appends a MARKER to the dead-letter topic, in the letter's partition:
  a `paysync.DeadLetter` with `stage="ops"`, `error_kind="replayed"`, `error_code="REPLAYED"`, whose
  `topic/partition/offset` point at the letter. A later `replay` skips letters that have a marker
  (`--force` re-drives them anyway); `list` shows them as `replayed` and never lists markers.
  If the re-driven record fails again, its stage dead-letters it anew: a new, open letter.
- The `Stripe_Sync_Error__c` row of a streams or sink letter follows: Replayed after `replay`, Resolved after
  `purge` (`ops.dlq_status`, through `salesforce.upserts`).
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
from typing import Any

from ops.dlq_letters import DeadLetterStore, Letter, letter_time_ms, parse_ident
from ops.dlq_status import REPLAYED, RESOLVED, newly_resolved, update_rows
from ops.dlq_view import detail, summary, table
from ops.kafka_toolkit import OpsSettings, Redriver, ToolError, parse_time
from paysync.logs import scrub

DLQ_REPLAY_HEADER = "paysync-dlq-replay-of"


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
        if since is not None and (letter_time_ms(letter.field("last_failure_at")) or 0) < since:
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
        table(rows, out)
        out.write(f"{len(rows)} dead letter(s)" + ("" if args.all else " (resolved ones hidden; --all shows them)") + "\n")
    return 0


def cmd_show(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    wanted = parse_ident(args.ident)
    for letter in store.letters():
        if (letter.partition, letter.offset) == wanted:
            out.write(scrub(json.dumps(detail(letter, store.codec), indent=2, ensure_ascii=False, default=str)) + "\n")
            return 0
    raise ToolError(f"no dead letter at {args.ident} of {store.topic} (markers are not dead letters)")


def cmd_replay(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    if not (args.all or args.code or args.stage or args.id):
        raise ToolError("choose what to replay: --id P:O, --code CODE, --stage STAGE, or --all")
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
    update_rows(store, chosen, REPLAYED, out)
    return 0


def cmd_purge(store: DeadLetterStore, args: argparse.Namespace, out: Any) -> int:
    if not (args.all or args.through or args.replayed):
        raise ToolError("choose what to resolve: --through P:O, --replayed, or --all")
    ranges = store.ranges()
    current = store.resolved_offsets([r.partition for r in ranges])
    wanted = dict(current)
    if args.all:
        wanted = {r.partition: r.end for r in ranges}
    for ident in args.through or []:
        part, off = parse_ident(ident)
        if part not in wanted:
            raise ToolError(f"{store.topic} has no partition {part}")
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
    resolved = {p: max(o, current.get(p, 0)) for p, o in wanted.items()}
    leaving = newly_resolved(store, current, resolved)
    store.resolve(resolved)
    out.write(f"resolved offsets committed for group {store.group}\n")
    update_rows(store, leaving, RESOLVED, out)
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
    except (ToolError, KafkaException) as exc:
        err.write(f"paysync dlq: {exc}\n")
        return 1
    finally:
        store.close()
