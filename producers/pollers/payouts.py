"""The payout side of the balance poller: which payouts to list with `?payout=` and when, and their members.

Moved out of `balance_poller.py` (issue 19); `BalanceTransactionsPoller` delegates here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producers.pollers.balance_poller import BalanceTransactionsPoller

FINAL_PAYOUT_STATUSES = frozenset({"paid", "failed"})
_EXPAND = {"expand": ["data.source"]}


def payout_members(poller: BalanceTransactionsPoller, payout_id: str) -> list[tuple[str, str, bytes]]:
    """Every transaction of one payout, encoded with the payout id and member count."""
    listed: list[tuple[dict[str, Any], str]] = []
    for page, _ in poller.api.list_all("/v1/balance_transactions", {"payout": payout_id, **_EXPAND},
                                       poller.account):
        listed.extend(zip(page.objects, page.raw))
    count = sum(1 for txn, _ in listed if txn.get("type") != "payout")
    return [poller._encode(txn, raw, payout_id, count) for txn, raw in reversed(listed)]


def poll_payouts(poller: BalanceTransactionsPoller, state: dict[str, Any], now: int) -> int:
    """List the members of every newly final payout; how many records were published."""
    done: dict[str, int] = state["payouts_done"]
    published = 0
    oldest = now - poller.payout_lookback_s
    for page, _ in poller.api.list_all("/v1/payouts", {"created": {"gte": oldest}}, poller.account):
        for payout in page.objects:
            if payout.get("status") not in FINAL_PAYOUT_STATUSES or payout["id"] in done:
                continue
            published += poller.publisher.publish_many_sync(payout_members(poller, payout["id"]),
                                                            poller.publish_timeout_s)
            done[payout["id"]] = int(payout.get("created") or now)
            poller.cursors.save(poller.name, state, state.get("created"))  # a listed payout is never re-listed
    state["payouts_done"] = {k: v for k, v in done.items() if v >= oldest}
    return published
