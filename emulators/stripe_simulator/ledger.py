"""Balances and automatic payouts: which balance transactions are still unpaid, and what a sweep takes.

A sweep first makes every transaction whose `available_on` has passed `available` (`settle`, whether or not a
payout follows), then takes the unswept ones; the payout's amount is the exact sum of their nets, so
`sum(net of members) == payout.amount` holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Account:
    """The platform (`id=None`) or a connected account, with its settlement currency and bank account."""

    id: str | None
    currency: str
    bank_account: str
    customers: list[dict[str, Any]] = field(default_factory=list)


class Ledger:
    """Unswept balance transactions per account (bounded by the payout interval, not by the run's length)."""

    def __init__(self) -> None:
        self._unswept: dict[str | None, list[dict[str, Any]]] = {}
        self.settling: set[str | None] = set()  # accounts whose settle tick is scheduled (`story_payouts`)

    def add(self, account: str | None, txn: dict[str, Any]) -> None:
        """Record a new balance transaction of `account`."""
        self._unswept.setdefault(account, []).append(txn)

    def settle(self, account: str | None, now: int) -> list[dict[str, Any]]:
        """Mark `available` and return the unswept transactions of `account` still `pending` whose `available_on`
        has passed, paid out or not ("Balance transaction types", zh-CN page translated: the `pending` balance "becomes
        `available` according to your transaction settlement timing"; `available_on`: "The date that the transaction's
        net funds become available in the Stripe balance")."""
        ready = [t for t in self._unswept.get(account, []) if t["available_on"] <= now and t["status"] == "pending"]
        for txn in ready:
            txn["status"] = "available"
        return ready

    def has_pending(self, account: str | None) -> bool:
        """Whether `account` has an unswept transaction still `pending`."""
        return any(t["status"] == "pending" for t in self._unswept.get(account, []))

    def take_available(self, account: str | None, now: int) -> list[dict[str, Any]] | None:
        """Remove and return the available transactions if their nets sum to more than zero, else None."""
        pending = self._unswept.get(account, [])
        ready = [t for t in pending if t["available_on"] <= now]
        if not ready or sum(t["net"] for t in ready) <= 0:
            return None
        self._unswept[account] = [t for t in pending if t["available_on"] > now]
        return ready

    def latest_available_on(self) -> int | None:
        """The latest `available_on` of any unswept transaction (None when nothing is unswept)."""
        values = [t["available_on"] for txns in self._unswept.values() for t in txns]
        return max(values) if values else None

    def unswept(self) -> dict[str | None, list[dict[str, Any]]]:
        """Every unswept transaction by account (the unpaid balance at the end of a run)."""
        return {acct: list(txns) for acct, txns in self._unswept.items() if txns}
