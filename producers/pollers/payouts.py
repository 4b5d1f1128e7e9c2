"""The payout side of the balance poller: which payouts are listed with `?payout=`, when, and what happens
when a listing fails. `BalanceTransactionsPoller` delegates here; `paysync backfill` uses the same rule.

The rules (docs.stripe.com, "Payout reconciliation"): "You control the timing and amount of manual payouts,
so Stripe can't identify which transactions are included in each payout." The Payout object's
`reconciliation_status`: "If completed, you can use the Balance Transactions API to list all balance
transactions that are paid out in this payout." So (`plan`):

- a manual or instant payout (`automatic=false`) is never listed with `?payout=` (Stripe answers 400); once
  final its header (the listed payout as a snapshot event on `stripe.events`, `event_type=payout.poll`) is
  published instead, so the streams give it a reconciliation state of its own;
- an automatic payout's members are listed when `reconciliation_status` is `completed` (not at `paid`
  while `in_progress`), or when it `failed` (no reconciliation follows a failure), or at `paid` when the
  field is absent (older API versions). Members carry `payout_transaction_count`: the list is complete.
- a failed automatic payout is listed at once, and once more a visibility horizon later (`payouts_relist` in the
  cursor state): Stripe documents the `?payout=` list as complete only for `reconciliation_status: completed`,
  and says nothing of a failed payout's, while its entries can become visible in lists late (issue 15 point 1,
  tap-stripe#45); so its first list may be short. A failed payout already `completed` is listed once.

Error isolation: a payout whose listing fails never stops the others or the range cursor. It is retried
on later polls with exponential backoff (`payout_retries` in the cursor state) and counted; after
`MAX_TRIES` tries, or at once for a permanent answer (a 4xx: `STRIPE_ERRORS`), it becomes a dead letter
(stage `producers`, the payout id as key and object id) and is not listed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from paysync.codec import AvroCodec
from paysync.deadletter import dead_letter_record, encode_dead_letter
from paysync.outcomes import Outcome
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from producers.envelope import envelope
from producers.stripe_api import StripeApiError, compact_json

if TYPE_CHECKING:
    from producers.pollers.balance_poller import BalanceTransactionsPoller

log = logging.getLogger(__name__)
Plan = Literal["members", "header", "nothing", "wait"]
Record = tuple[str, str, bytes]
FINAL_PAYOUT_STATUSES = frozenset({"paid", "failed", "canceled"})
MAX_TRIES = 6
BACKOFF_BASE_S = 120
BACKOFF_CAP_S = 6 * 3600
_EXPAND = {"expand": ["data.source"]}


@dataclass(frozen=True)
class PayoutMetrics:
    """The payout side's Prometheus metrics (one set per registry)."""

    listed: Counter  # paysync_payout_member_listings_total: complete member lists published
    headers: Counter  # paysync_payout_headers_total{reason}: manual payouts published without members
    failures: Counter  # paysync_payout_listing_failures_total{stage,status}: failed Stripe listings
    dead_letters: Counter  # paysync_payout_dead_letters_total{code}
    awaiting_retry: Gauge  # paysync_payouts_awaiting_retry{poller}


_METRICS: dict[int, PayoutMetrics] = {}


def payout_metrics(registry: CollectorRegistry = REGISTRY) -> PayoutMetrics:
    """The metrics in `registry`, created once per registry."""
    key = id(registry)
    if key not in _METRICS:
        _METRICS[key] = PayoutMetrics(
            Counter("paysync_payout_member_listings_total", "payouts whose complete member list was published",
                    registry=registry),
            Counter("paysync_payout_headers_total", "payouts published as a header only (never ?payout= listed)",
                    ["reason"], registry=registry),
            Counter("paysync_payout_listing_failures_total", "failed payout listings (stage members|payouts)",
                    ["stage", "status"], registry=registry),
            Counter("paysync_payout_dead_letters_total", "payouts whose members could not be listed, dead-lettered",
                    ["code"], registry=registry),
            Gauge("paysync_payouts_awaiting_retry", "payouts whose member listing failed and waits for a retry",
                  ["poller"], registry=registry),
        )
    return _METRICS[key]


def plan(payout: Mapping[str, Any]) -> Plan:
    """What to do with a listed payout now: list its members, publish its header, nothing for good, or wait."""
    status = payout.get("status")
    if payout.get("automatic") is False:  # manual or instant: Stripe cannot say which transactions it holds
        return "header" if status in FINAL_PAYOUT_STATUSES else "wait"
    if status == "canceled":
        return "nothing"
    if status == "failed":
        return "members"
    reconciliation = payout.get("reconciliation_status")
    if reconciliation == "completed" or (reconciliation is None and status == "paid"):
        return "members"
    return "wait"


def payout_members(poller: BalanceTransactionsPoller, payout_id: str) -> list[Record]:
    """Every transaction of one payout, encoded with the payout id and member count; StripeApiError on failure."""
    listed: list[tuple[dict[str, Any], str]] = []
    for page, _ in poller.api.list_all("/v1/balance_transactions", {"payout": payout_id, **_EXPAND},
                                       poller.account):
        listed.extend(zip(page.objects, page.raw))
    count = sum(1 for txn, _ in listed if txn.get("type") != "payout")
    return [poller._encode(txn, raw, payout_id, count) for txn, raw in reversed(listed)]


def topic_prefix(poller: BalanceTransactionsPoller) -> str:
    """The deployment's topic prefix, read back from the poller's balance-transaction topic."""
    return poller.topic.removesuffix(STRIPE_BALANCE_TRANSACTIONS.name)


def header_record(poller: BalanceTransactionsPoller, payout: dict[str, Any], listed_at: int) -> Record:
    """The payout as listed, as a snapshot event (`payout.poll`, id `poll:<payout id>:<listed at>`)."""
    event = {"id": f"poll:{payout['id']}:{listed_at}", "object": "event", "type": "payout.poll",
             "created": listed_at, "livemode": bool(payout.get("livemode", False)), "account": poller.account,
             "api_version": poller.api.api_version, "data": {"object": payout}}
    key, rec = envelope(event, compact_json(event), "poll", listed_at * 1000, exact=True)
    rec["account"] = rec["account"] or poller.account
    return STRIPE_EVENTS.full_name(topic_prefix(poller)), key, poller.codec.encode(STRIPE_EVENTS.schema, rec)


def dead_letter(poller: BalanceTransactionsPoller, payout_id: str, exc: StripeApiError, attempts: int,
                first_failure_ms: int | None, code: str) -> Record:
    """The dead letter of a payout whose members cannot be listed: reason, payout id, attempts."""
    record = dead_letter_record(
        topic=poller.topic, partition=-1, offset=-1, stage="producers", error_kind="stripe", error_code=code,
        message=f"members of payout {payout_id} ({poller.account or 'platform'}) not listed: {exc}",
        key=payout_id.encode(), object_id=payout_id, attempts=attempts, first_failure_ms=first_failure_ms)
    topic, value = encode_dead_letter(poller.codec, record, topic_prefix(poller))
    return topic, payout_id, value


def _status_label(exc: StripeApiError) -> str:
    return "network" if exc.status is None else str(exc.status)


def backfill_records(poller: BalanceTransactionsPoller, payout: dict[str, Any]) -> list[Record]:
    """For `paysync backfill`: the members of a listable payout, or its dead letter when Stripe refuses for
    good (a 4xx); a transient failure raises (the backfill stops and resumes on its re-run)."""
    if plan(payout) != "members":
        return []
    try:
        records = payout_members(poller, payout["id"])
    except StripeApiError as exc:
        payout_metrics().failures.labels("members", _status_label(exc)).inc()
        if exc.outcome in (Outcome.RETRY, Outcome.PAUSE, Outcome.REAUTH):
            raise
        payout_metrics().dead_letters.labels("PAYOUT_MEMBERS_REFUSED").inc()
        return [dead_letter(poller, payout["id"], exc, 1, None, "PAYOUT_MEMBERS_REFUSED")]
    payout_metrics().listed.inc()
    return records


class _PayoutPoll:
    """One poll of the payouts of one account: the cursor state it updates and what it published."""

    def __init__(self, poller: BalanceTransactionsPoller, state: dict[str, Any], now: int) -> None:
        self.poller, self.state, self.now = poller, state, now
        state.pop("payouts_done", None)  # before issue 19: listed at paid, maybe incomplete: list once more
        self.final: dict[str, int] = state.setdefault("payouts_final", {})
        self.retries: dict[str, dict[str, Any]] = state.setdefault("payout_retries", {})
        self.relist: dict[str, dict[str, int]] = state.setdefault("payouts_relist", {})
        self.metrics = payout_metrics()
        self.published = 0

    def _save(self) -> None:
        self.poller.cursors.save(self.poller.name, self.state, self.state.get("created"))

    def _publish(self, batch: list[Record]) -> None:
        self.published += self.poller.publisher.publish_many_sync(batch, self.poller.publish_timeout_s)

    def _finish(self, payout: dict[str, Any]) -> None:
        """The payout is handled for good: never listed again (kept until it leaves the lookback)."""
        self.final[payout["id"]] = int(payout.get("created") or self.now)
        self.retries.pop(payout["id"], None)
        self.relist.pop(payout["id"], None)
        self._save()

    def _relist_later(self, payout: dict[str, Any]) -> bool:
        """A failed payout listed for the first time (not reconciled): list it again a horizon from now."""
        payout_id = str(payout["id"])
        if (payout.get("status") != "failed" or payout.get("reconciliation_status") == "completed"
                or payout_id in self.relist):
            return False
        self.relist[payout_id] = {"at": self.now + self.poller.listing.config.horizon_s,
                                  "created": int(payout.get("created") or self.now)}
        self._save()
        return True

    def handle(self, payout: dict[str, Any]) -> None:
        """Act on one listed payout by `plan`; a failing member listing is retried later or dead-lettered."""
        payout_id = str(payout["id"])
        retry, relist = self.retries.get(payout_id), self.relist.get(payout_id)
        if payout_id in self.final or (retry is not None and int(retry["next_at"]) > self.now) or (
                relist is not None and int(relist["at"]) > self.now):
            return
        action = plan(payout)
        if action == "header":
            self._publish([header_record(self.poller, payout, self.now)])
            self.metrics.headers.labels("manual").inc()
            self._finish(payout)
        elif action == "nothing":
            self._finish(payout)
        elif action == "members":
            try:
                batch = payout_members(self.poller, payout_id)
            except StripeApiError as exc:
                if exc.outcome in (Outcome.PAUSE, Outcome.REAUTH):
                    raise  # the key itself is refused: no payout can be listed, the poller pauses
                self._failed(payout, exc)
                return
            self._publish(batch)
            self.metrics.listed.inc()
            if not self._relist_later(payout):
                self._finish(payout)

    def _failed(self, payout: dict[str, Any], exc: StripeApiError) -> None:
        """Count the failure; dead-letter a permanent one or the MAX_TRIES-th, else schedule a retry."""
        payout_id = str(payout["id"])
        self.metrics.failures.labels("members", _status_label(exc)).inc()
        previous = self.retries.get(payout_id) or {}
        tries = int(previous.get("tries") or 0) + 1
        first_ms = int(previous.get("first_failure_ms") or time.time() * 1000)
        permanent = exc.outcome in (Outcome.DEAD_LETTER, Outcome.SKIP)
        log.warning("payout member listing failed", extra={
            "payout_id": payout_id, "account": self.poller.account, "tries": tries, "status": exc.status,
            "permanent": permanent})
        if permanent or tries >= MAX_TRIES:
            code = "PAYOUT_MEMBERS_REFUSED" if permanent else "PAYOUT_MEMBERS_RETRIES_EXHAUSTED"
            self._publish([dead_letter(self.poller, payout_id, exc, tries, first_ms, code)])
            self.metrics.dead_letters.labels(code).inc()
            self._finish(payout)
            return
        delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (tries - 1))
        self.retries[payout_id] = {"tries": tries, "next_at": self.now + delay, "first_failure_ms": first_ms,
                                   "created": int(payout.get("created") or self.now), "error": str(exc)[:500]}
        self._save()


def poll_payouts(poller: BalanceTransactionsPoller, state: dict[str, Any], now: int) -> int:
    """Handle every payout created within the lookback (`_PayoutPoll.handle`); how many records were published.

    Never raises for one payout; a failing `/v1/payouts` listing is counted and retried at the next poll,
    so the range cursor is saved either way. Only a refused key (401/403) propagates.
    """
    run = _PayoutPoll(poller, state, now)
    oldest = now - poller.payout_lookback_s
    try:
        for page, _ in poller.api.list_all("/v1/payouts", {"created": {"gte": oldest}}, poller.account):
            for payout in page.objects:
                run.handle(payout)
    except StripeApiError as exc:
        if exc.outcome in (Outcome.PAUSE, Outcome.REAUTH):
            raise
        run.metrics.failures.labels("payouts", _status_label(exc)).inc()
        log.warning("payout listing failed; next poll retries", extra={"account": poller.account,
                                                                         "status": exc.status})
    state["payouts_final"] = {k: v for k, v in run.final.items() if v >= oldest}
    state["payout_retries"] = {k: v for k, v in run.retries.items() if int(v.get("created") or now) >= oldest}
    state["payouts_relist"] = {k: v for k, v in run.relist.items() if int(v.get("created") or now) >= oldest}
    run.metrics.awaiting_retry.labels(poller.name).set(len(state["payout_retries"]))
    return run.published
