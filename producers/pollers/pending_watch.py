"""The pending watch: balance transactions published while `pending` are listed again once their funds are
available, so `Stripe_Balance_Transaction__c.Status__c` follows Stripe when no automatic payout re-lists them
(a manual or instant payout, or no payout at all; issue 19, point 4).

Stripe's rules (API reference, "The Balance Transaction object"): `status` "If the transaction's net funds are
available in the Stripe balance yet. Either `available` or `pending`"; `available_on` "The date that the transaction's
net funds become available in the Stripe balance". "Balance transaction types" (its zh-CN page, translated): a payment
is first "a `pending` balance", which "becomes `available` according to your transaction settlement timing" — whether
or not a payout follows. Nothing else names them again: `?payout=` is "For automatic Stripe payouts only" ("List all
balance transactions"), and for manual payouts "Stripe can't identify which transactions are included" ("Payout
reconciliation"); the list has no `status` or `available_on` filter (its parameters: `created`, `currency`, `payout`,
`source`, `type` and paging), and `balance.available` carries the Balance, not the transactions. So the watch lists
again by `created`.

The watch lives in the poller's cursor state (`state["pending_watch"]`, a list of windows), so a restart keeps it:

- **window** `{gte, lte, first, upto, due, tries, after, still}`: a `created` range `[gte, lte]` whose
  *members* are the transactions with `available_on <= upto`, listed again at `due` (`upto + MARGIN_S`, later
  after a backoff). A pending transaction joins a window when its `available_on` is within its *spread* (5 % of
  its settlement delay, 1 min … 1 h) of the window's earliest (`first`) and its `created` within the spread of the
  range, else opens one (so an `available` copy is at most a spread + `MARGIN_S` late); at most `MAX_WINDOWS`
  (the two closest are merged). Stripe gives one day's payments one `available_on`, so a day of one settlement
  timing is one window.
- **pass** (each poll, windows whose `due` has come, oldest first, at most `MAX_PAGES_PER_POLL` pages): list
  `created[gte]..[lte]` newest first, 100 a page with `expand[]=data.source` (as the range listing), resumable
  at `after`. A member now `available` is published again (the streams and the sink keep the later state:
  `core.types.balance_transaction.rank`; a copy already applied is a duplicate they drop); members still
  `pending` form a retry window (`still`), due after a backoff of `RETRY_BASE_S` doubling to `RETRY_CAP_S`,
  dropped with a warning `GIVE_UP_S` after `first`. A first page with members and none available
  means Stripe has not moved them yet: the window backs off after that one call.
- **failures** are isolated: a failing call backs off its window (counted); the other windows, the range cursor
  and the payouts go on. Only a refused key (401/403) propagates, as everywhere in the poller.

Cost: every watched transaction is listed once more, 100 a call: ~10 calls per 1,000 plus one per window
(`tests/producers/test_pending_watch.py` measures 10.0 with daily `available_on`, 10.9 with per-transaction ones).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from paysync.outcomes import Outcome
from producers.stripe_api import StripeApi, StripeApiError

log = logging.getLogger(__name__)

# Tuning constants (no deployment has needed to change them; they would become PAYSYNC_POLL_PENDING_* settings).
MARGIN_S = 5  # after `available_on` before a window is listed (Stripe documents no lag; a late flip is retried)
RETRY_BASE_S = 15  # first backoff of a window still pending (or failing); doubles each try
RETRY_CAP_S = 3600
GIVE_UP_S = 7 * 86400  # a transaction pending this long after its available_on is left to `paysync reconcile`
MAX_WINDOWS = 500  # ~100 bytes each in the cursor record (Kafka's limit is 1,000,000 bytes)
MAX_PAGES_PER_POLL = 50  # like the range listing: a big day yields to the other accounts and resumes
_JOIN_LOOKBACK = 16  # windows, newest first, a new pending transaction may join
_PATH = "/v1/balance_transactions"
_EXPAND = {"expand": ["data.source"]}

Listed = list[tuple[dict[str, Any], str]]
Publish = Callable[[Listed], int]
Save = Callable[[], None]


@dataclass(frozen=True)
class WatchMetrics:
    """The watch's Prometheus metrics (one set per registry)."""

    republished: Counter  # paysync_pending_watch_republished_total: available copies published again
    failures: Counter  # paysync_pending_watch_failures_total{status}: failed re-list calls
    given_up: Counter  # paysync_pending_watch_given_up_total: windows still pending after GIVE_UP_S
    windows: Gauge  # paysync_pending_watch_windows{poller}


_METRICS: dict[int, WatchMetrics] = {}


def watch_metrics(registry: CollectorRegistry = REGISTRY) -> WatchMetrics:
    """The metrics in `registry`, created once per registry."""
    key = id(registry)
    if key not in _METRICS:
        _METRICS[key] = WatchMetrics(
            Counter("paysync_pending_watch_republished_total", "balance transactions published again once available",
                    registry=registry),
            Counter("paysync_pending_watch_failures_total", "failed re-lists of pending balance transactions",
                    ["status"], registry=registry),
            Counter("paysync_pending_watch_given_up_total", "watch windows still pending after the give-up time",
                    registry=registry),
            Gauge("paysync_pending_watch_windows", "created windows of pending balance transactions watched",
                  ["poller"], registry=registry),
        )
    return _METRICS[key]


def _spread(created: int, available_on: int) -> int:
    """How far apart (seconds) the `available_on` and `created` times of one window may be: 5 % of the
    settlement delay, at least a minute (fewer windows, fewer calls), at most an hour."""
    return max(60, min(3600, (available_on - created) // 20))


def backoff_s(tries: int) -> int:
    """The wait before try `tries + 1` of a window (tries >= 1)."""
    return int(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(0, tries - 1)))


def _window(gte: int, lte: int, first: int, upto: int, due: int, tries: int = 0) -> dict[str, Any]:
    return {"gte": gte, "lte": lte, "first": first, "upto": upto, "due": due, "tries": tries, "after": None,
            "still": None}


def watch(state: dict[str, Any], txns: Listed) -> None:
    """Remember the transactions among `txns` published `pending` (call it after publishing them)."""
    windows: list[dict[str, Any]] = state.setdefault("pending_watch", [])
    for txn, _ in txns:
        if txn.get("status") != "pending":
            continue
        created = int(txn.get("created") or 0)
        available_on = int(txn.get("available_on") or created)
        spread = _spread(created, available_on)
        for w in reversed(windows[-_JOIN_LOOKBACK:]):
            if (w["tries"] == 0 and w["after"] is None and abs(int(w["first"]) - available_on) <= spread
                    and int(w["gte"]) - spread <= created <= int(w["lte"]) + spread):
                upto = max(int(w["upto"]), available_on)
                w.update(gte=min(int(w["gte"]), created), lte=max(int(w["lte"]), created),
                         first=min(int(w["first"]), available_on), upto=upto, due=upto + MARGIN_S)
                break
        else:
            windows.append(_window(created, created, available_on, available_on, available_on + MARGIN_S))
    _cap(windows)


def _cap(windows: list[dict[str, Any]]) -> None:
    """At most MAX_WINDOWS: merge the two whose `upto` are closest (the later `upto` and due hold; the pass
    restarts from the top, so nothing of either is lost)."""
    while len(windows) > MAX_WINDOWS:
        windows.sort(key=lambda w: int(w["upto"]))
        i = min(range(len(windows) - 1), key=lambda k: int(windows[k + 1]["upto"]) - int(windows[k]["upto"]))
        a, b = windows[i], windows.pop(i + 1)
        a.update(gte=min(int(a["gte"]), int(b["gte"])), lte=max(int(a["lte"]), int(b["lte"])),
                 first=min(int(a["first"]), int(b["first"])), upto=max(int(a["upto"]), int(b["upto"])),
                 due=max(int(a["due"]), int(b["due"])),
                 tries=min(int(a["tries"]), int(b["tries"])), after=None, still=None)


class PendingWatch:
    """Lists the due windows of one account's watch again and publishes the members that became available."""

    def __init__(self, api: StripeApi, account: str | None, poller_name: str, publish: Publish, save: Save,
                 registry: CollectorRegistry = REGISTRY) -> None:
        self.api, self.account, self.poller_name = api, account, poller_name
        self.publish, self.save = publish, save
        self.metrics = watch_metrics(registry)

    def poll(self, state: dict[str, Any], now: int) -> int:
        """Pass over every due window (page budget permitting); how many records were published. Each page is
        saved after it is published; the caller saves the rest with its cursor. Never raises for a failing Stripe
        call but a refused key."""
        windows: list[dict[str, Any]] = state.setdefault("pending_watch", [])
        published = pages = 0
        for w in sorted((w for w in windows if int(w["due"]) <= now), key=lambda w: int(w["due"])):
            if now - int(w["first"]) > GIVE_UP_S:
                log.warning("balance transactions still pending long after available_on; left to reconcile",
                            extra={"account": self.account, "created_gte": w["gte"], "created_lte": w["lte"]})
                self.metrics.given_up.inc()
                windows.remove(w)
                continue
            try:
                n, pages, finished = self._pass(w, now, pages)
            except StripeApiError as exc:
                if exc.outcome in (Outcome.PAUSE, Outcome.REAUTH):
                    raise
                self._failed(w, exc, now)
                continue
            published += n
            if finished:
                windows.remove(w)
                self._retry(windows, w, now)
            if pages >= MAX_PAGES_PER_POLL:
                break
        self.metrics.windows.labels(self.poller_name).set(len(windows))
        return published

    def _pass(self, w: dict[str, Any], now: int, pages: int) -> tuple[int, int, bool]:
        """List window `w` from where its pass stands: (published, pages spent so far, whether it finished)."""
        published = 0
        first = w["after"] is None
        params = {**_EXPAND, "created": {"gte": int(w["gte"]), "lte": int(w["lte"])}}
        for page, after in self.api.list_all(_PATH, params, self.account, w["after"]):
            available, pending = self._members(w, page.objects, page.raw)
            pages += 1
            if first and pending and not available:  # Stripe has not moved them yet: one call, then back off
                self._back_off(w, now)
                return published, pages, False
            first = False
            published += self.publish(available) if available else 0
            self.metrics.republished.inc(len(available))
            if pending:
                lo, hi = min(pending), max(pending)
                still = w["still"] or [lo, hi]
                w["still"] = [min(int(still[0]), lo), max(int(still[1]), hi)]
            w["after"] = after
            self.save()
            if pages >= MAX_PAGES_PER_POLL and page.has_more:
                return published, pages, False
        return published, pages, True

    def _members(self, w: dict[str, Any], objects: list[dict[str, Any]],
                 raw: list[str]) -> tuple[Listed, list[int]]:
        """(members now available, oldest first; `created` of members still pending) of one listed page."""
        available: Listed = []
        pending: list[int] = []
        for txn, text in zip(objects, raw):
            created = int(txn.get("created") or 0)
            if int(txn.get("available_on") or created) > int(w["upto"]):
                continue  # another window's (its funds are not due yet)
            if txn.get("status") == "available":
                available.append((txn, text))
            else:
                pending.append(created)
        available.reverse()
        return available, pending

    def _retry(self, windows: list[dict[str, Any]], w: dict[str, Any], now: int) -> None:
        """After a finished pass (`w` already removed, so the cap holds): the members still pending come back after
        a backoff."""
        if w["still"] is None:
            return
        tries = int(w["tries"]) + 1
        lo, hi = w["still"]
        windows.append(_window(int(lo), int(hi), int(w["first"]), int(w["upto"]), now + backoff_s(tries), tries))

    def _back_off(self, w: dict[str, Any], now: int) -> None:
        w["tries"] = int(w["tries"]) + 1
        w["due"] = now + backoff_s(int(w["tries"]))

    def _failed(self, w: dict[str, Any], exc: StripeApiError, now: int) -> None:
        """Count a failed call; the window resumes at its saved page after a backoff (a gone cursor: from the top)."""
        self.metrics.failures.labels("network" if exc.status is None else str(exc.status)).inc()
        log.warning("pending watch re-list failed; retried later", extra={
            "account": self.account, "status": exc.status, "request_id": exc.request_id, "tries": w["tries"]})
        if exc.outcome is Outcome.SKIP:
            w["after"], w["still"] = None, None
        self._back_off(w, now)
