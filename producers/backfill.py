"""`paysync backfill --since DATE [--until DATE] [--types …] [--account acct_…] [--restart]`.

Publishes Stripe history as `source=backfill` records: the Events API window (30 days) as event
envelopes; for history older than that window, listed objects (customers, payment intents, charges,
refunds, disputes, invoices, payouts: the registry's `backfill_types()`, parents first) as snapshot envelopes (`event_id = backfill:<object id>:<listed at>`,
`event_type = <object>.backfill`, `created` = listing time, since a listing is the state at that
moment) and balance transactions (by created range, and the members of each automatic payout whose
reconciliation is `completed` or that failed; a manual payout is never listed with `?payout=`, and a payout
Stripe refuses to list becomes a dead letter instead of stopping the run: `producers.pollers.payouts`).
Resumable: after every acknowledged page the `starting_after` cursor is saved in `paysync.cursors`
under `backfill:<type>:<account>:<since>`; a re-run with the same --since resumes (--restart ignores it).
A progress line (records, rate, ETA from the created range covered) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from core import registry
from paysync.codec import AvroCodec
from paysync.logs import setup_logging
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS

log = logging.getLogger("producers.backfill")
EVENTS_WINDOW_S = 30 * 86400
# `--types` name (the list endpoint's last segment) -> Stripe type, in the registry's backfill order.
OBJECT_TYPES: dict[str, str] = {spec.list_path.removeprefix("/v1/"): spec.name for spec in registry.backfill_types()}
ALL_TYPES = ("events", *OBJECT_TYPES, "balance_transactions")


def parse_date(text: str) -> int:
    """`2026-01-31`, an ISO datetime, or unix seconds -> unix seconds (UTC when no zone is given)."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


class Progress:
    """One updating stderr line: records, rate and ETA estimated from how much of the range is covered."""

    def __init__(self, label: str, since: int, until: int, enabled: bool = True) -> None:
        self.label, self.since, self.until, self.enabled = label, since, until, enabled
        self.count, self.started = 0, time.monotonic()

    def update(self, added: int, oldest_created: int | None) -> None:
        self.count += added
        if not self.enabled:
            return
        elapsed = max(1e-6, time.monotonic() - self.started)
        span = max(1, self.until - self.since)
        done = 1.0 if oldest_created is None else min(1.0, max(0.0, (self.until - oldest_created) / span))
        eta = elapsed * (1 - done) / done if done > 0 else float("inf")
        eta_text = "--:--" if eta == float("inf") else time.strftime("%H:%M:%S", time.gmtime(eta))
        bar = "#" * int(done * 30)
        sys.stderr.write(f"\r{self.label:<22} [{bar:<30}] {done:6.1%} {self.count:>8} records "
                         f"{self.count / elapsed:8.1f}/s ETA {eta_text}")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def snapshot_envelope(obj: dict[str, Any], raw: str, object_type: str, account: str | None, listed_at: int,
                      api_version: str) -> dict[str, Any]:
    """A synthetic event around a listed object, so backfilled history travels like events do."""
    return {"id": f"backfill:{obj['id']}:{listed_at}", "object": "event", "type": f"{object_type}.backfill",
            "created": listed_at, "livemode": bool(obj.get("livemode", False)), "account": account,
            "api_version": api_version, "data": {"object": json.loads(raw)}}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync backfill", description="publish Stripe history as source=backfill")
    p.add_argument("--since", required=True, help="start date (YYYY-MM-DD, ISO datetime or unix seconds)")
    p.add_argument("--until", help="end date (default: now, fixed at the first run)")
    p.add_argument("--types", default=",".join(ALL_TYPES), help=f"comma separated, of {', '.join(ALL_TYPES)}")
    p.add_argument("--account", help="a Connect account (default: the platform)")
    p.add_argument("--restart", action="store_true", help="ignore a saved position and start over")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--create-topics", action="store_true")
    p.add_argument("--log-level", default="WARNING")
    return p


@dataclass
class _Run:
    """One backfill run: its arguments and the Stripe and Kafka clients it publishes through."""

    args: argparse.Namespace
    since: int
    account: str | None
    api: Any
    publisher: Any
    cursors: Any
    codec: AvroCodec
    members: Any  # BalanceTransactionsPoller: a reconciled (or failed) automatic payout's members
    events_topic: str
    bt_topic: str
    publish_timeout_s: float


def _window(kind: str, since: int, until: int) -> tuple[int, int] | None:
    """The created range listed for `kind`: the events window, older history for object lists; None when empty."""
    low, high = since, until
    if kind == "events":
        low = max(since, until - EVENTS_WINDOW_S + 60)
    elif kind in OBJECT_TYPES:
        high = min(until, until - EVENTS_WINDOW_S + 60)  # newer history comes from the events
        if high <= low:
            return None
    return low, high


def _page_records(run: _Run, kind: str, page: Any, listed_at: int) -> list[tuple[str, str, bytes]]:
    """(topic, key, Avro value) of every record one listed page publishes."""
    from producers.balance_records import balance_record
    from producers.envelope import envelope
    from producers.pollers.payouts import backfill_records

    batch: list[tuple[str, str, bytes]] = []
    for obj, raw in zip(page.objects, page.raw):
        if kind == "events":
            key, rec = envelope(obj, raw, "backfill", listed_at * 1000)
            rec["account"] = rec["account"] or run.account
            batch.append((run.events_topic, key, run.codec.encode(STRIPE_EVENTS.schema, rec)))
        elif kind == "balance_transactions":
            key, bt_rec = balance_record(obj, raw, source="backfill", account=run.account,
                                         api_version=run.api.api_version, received_at_ms=listed_at * 1000,
                                         exact=True)
            batch.append((run.bt_topic, key, run.codec.encode(STRIPE_BALANCE_TRANSACTIONS.schema, bt_rec)))
        else:
            event = snapshot_envelope(obj, raw, OBJECT_TYPES[kind], run.account, listed_at, run.api.api_version)
            key, rec = envelope(event, json.dumps(event, separators=(",", ":")), "backfill", listed_at * 1000)
            batch.append((run.events_topic, key, run.codec.encode(STRIPE_EVENTS.schema, rec)))
            if kind == "payouts":  # members only when Stripe can list them (`producers.pollers.payouts.plan`)
                batch.extend(backfill_records(run.members, obj))
    return batch


def _backfill_kind(run: _Run, kind: str) -> int:
    """List and publish one `--types` entry, resumably; how many records it published."""
    args, cursors = run.args, run.cursors
    name = f"backfill:{kind}:{run.account or 'platform'}:{run.since}"
    state = {} if args.restart else cursors.load_state(name)
    if state.get("done"):
        log.warning("already complete", extra={"cursor": name})
        return 0
    until = int(state.get("until") or (parse_date(args.until) if args.until else time.time()))
    state["until"] = until
    window = _window(kind, run.since, until)
    if window is None:
        return 0
    low, high = window
    path = "/v1/balance_transactions" if kind == "balance_transactions" else f"/v1/{kind}"
    params: dict[str, Any] = {"created": {"gte": low, "lte": high}}
    if kind == "balance_transactions":
        params["expand"] = ["data.source"]
    progress = Progress(kind, low, high, enabled=not args.no_progress)
    for page, cursor in run.api.list_all(path, params, run.account, starting_after=state.get("after")):
        batch = _page_records(run, kind, page, int(time.time()))
        run.publisher.publish_many_sync(batch, run.publish_timeout_s)
        state["after"] = cursor
        cursors.save(name, state, None)
        oldest = min((int(o.get("created") or high) for o in page.objects), default=None)
        progress.update(len(batch), oldest if page.has_more else None)
    progress.finish()
    state["done"] = True
    cursors.save(name, state, None)
    return progress.count


def main(argv: list[str]) -> int:
    """Entry point of `paysync backfill`."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    from producers.pollers.balance_poller import BalanceTransactionsPoller
    from producers.pollers.settings import PollerSettings
    from producers.pollers.wiring import open_stripe_io
    from producers.stripe_api import StripeApiError

    types = [t.strip() for t in args.types.split(",") if t.strip()]
    unknown = set(types) - set(ALL_TYPES)
    if unknown:
        sys.stderr.write(f"paysync backfill: unknown types {sorted(unknown)}; choose from {', '.join(ALL_TYPES)}\n")
        return 2
    settings = PollerSettings()
    if not settings.stripe_api_key.get_secret_value():
        sys.stderr.write("paysync backfill: set PAYSYNC_STRIPE_API_KEY or PAYSYNC_STRIPE_API_KEY_FILE\n")
        return 2
    io = open_stripe_io(settings, args.create_topics)
    codec = AvroCodec()
    prefix = settings.topics.prefix
    members = BalanceTransactionsPoller(io.api, io.publisher, io.cursors, topic_prefix=prefix,
                                        account=args.account, codec=codec, source="backfill")
    run = _Run(args, parse_date(args.since), args.account, io.api, io.publisher, io.cursors, codec, members,
               STRIPE_EVENTS.full_name(prefix), STRIPE_BALANCE_TRANSACTIONS.full_name(prefix),
               settings.poll_publish_timeout_s)
    total = 0
    try:
        for kind in types:
            total += _backfill_kind(run, kind)
    except StripeApiError as exc:
        sys.stderr.write(f"\npaysync backfill: {exc}\n(re-run the same command to resume)\n")
        return 1
    finally:
        io.publisher.close()
    sys.stderr.write(f"backfill published {total} records with {io.api.calls_made} Stripe API calls\n")
    return 0
