"""Automatic payouts: each sweep pays out an account's available balance, pending -> in_transit -> paid | failed.

Members of a payout are the transactions it swept plus its own `type=payout` transaction; a failed payout
returns its amount as a `payout_failure` transaction, available at once and swept by a later payout.
"""

from __future__ import annotations

from typing import Any

from .engine import Engine
from .ledger import Account
from .objects_other import payout


def sweep(sim: Engine, account: Account) -> None:
    """Pay out `account`'s available balance if positive; memberships are emitted as transaction upserts."""
    members = sim.ledger.take_available(account.id, sim.now)
    if members is None:
        return
    amount = sum(t["net"] for t in members)
    poid = sim.ids.new("po")
    own = sim.new_txn(account, amount=-amount, fee=0, source=poid, txn_type="payout", category="payout",
                      description="STRIPE PAYOUT", available_now=True)
    own["status"] = "available"
    po = payout(poid, sim.now, amount, account.currency, sim.now + 2 * 86400, account.bank_account, own["id"])
    for txn in members:
        txn["status"] = "available"
        sim.txn(account, txn, payout=poid)
    sim.txn(account, own, payout=poid)
    sim.emit("payout.created", po, account)
    sim.at(sim.between(30, 300), _in_transit, account, po, own)


def _in_transit(sim: Engine, account: Account, po: dict[str, Any], own: dict[str, Any]) -> None:
    po["status"] = "in_transit"
    po["trace_id"] = {"status": "pending", "value": None}
    sim.emit("payout.updated", po, account, {"status": "pending"})
    sim.at(sim.between(600, 3600), _arrive, account, po, own)


def _arrive(sim: Engine, account: Account, po: dict[str, Any], own: dict[str, Any]) -> None:
    if sim.chance(sim.p.payout_failure_rate):
        txn = sim.new_txn(account, amount=po["amount"], fee=0, source=po["id"], txn_type="payout_failure",
                          category="payout_reversal", description="STRIPE PAYOUT FAILURE", available_now=True)
        po.update(status="failed", failure_code="account_closed", failure_balance_transaction=txn["id"],
                  failure_message="The bank account has been closed.", reconciliation_status="not_applicable")
        sim.emit("payout.updated", po, account, {"status": "in_transit", "failure_code": None})
        sim.emit("payout.failed", po, account, {"status": "in_transit", "failure_code": None})
        return
    po.update(status="paid", reconciliation_status="completed")
    po["trace_id"] = {"status": "supported", "value": f"TRACE{po['id'][3:15].upper()}"}
    sim.emit("payout.updated", po, account, {"status": "in_transit"})
    sim.emit("payout.paid", po, account, {"status": "in_transit", "reconciliation_status": "not_applicable"})
