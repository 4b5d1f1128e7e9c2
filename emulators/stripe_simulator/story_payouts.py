"""Payouts: each sweep pays out an account's available balance, pending -> in_transit -> paid | failed.

Automatic payouts (`automatic=true`) name their members: the transactions they swept plus their own `type=payout`
transaction, listed by `GET /v1/balance_transactions?payout=`. Reconciliation completes after the payout is paid:
`reconciliation_status` `in_progress` -> `completed` with `payout.reconciliation_completed` some time after
`payout.paid` (stripe-python `_payout.py`: `Literal["completed", "in_progress", "not_applicable"]`; "If `completed`,
you can use the Balance Transactions API to list all balance transactions that are paid out in this payout";
docs.stripe.com "Payout reconciliation": "Listen to the `payout.reconciliation_completed` webhook event").
Decision: members appear as reconciliation progresses: the payout's own transaction and the older half of its
members are listed from `payout.created`, the rest from `payout.reconciliation_completed` (or from the failure).

Manual payouts (`automatic=false`, `method` `standard` or `instant`) are requested by the merchant: "You control the
timing and amount of manual payouts, so Stripe can't identify which transactions are included in each payout."
(docs "Payout reconciliation"), so they list no members (`?payout=` answers 400, see `api.py`) and their
`reconciliation_status` stays `not_applicable`. Instant payouts arrive the same day. (Not modelled: the instant
payout fee.)

A failed payout returns its amount as a `payout_failure` transaction, available at once and swept later.

Status: a transaction becomes `available` at its `available_on` whether or not a payout takes it ("Balance transaction
types", its zh-CN page translated: the `pending` balance "becomes `available` according to your transaction settlement
timing"; `available_on`: "The date that the transaction's net funds become available in the Stripe balance"). So a
settle tick (every `SETTLE_TICK_S` scaled scenario seconds while anything is pending, started by the sweeps) and every
sweep make each transaction whose `available_on` has passed `available` and list its new state: a balance too small to
pay out, or a manual payout, no longer leaves it `pending` for ever. The status moves up to a tick after
`available_on` (Stripe documents no lag; a poller must not rely on there being none).
"""

from __future__ import annotations

from typing import Any

from .engine import Engine
from .ledger import Account
from .objects_other import payout

SETTLE_TICK_S = 60.0  # scenario seconds (times `delay_scale`) between two settle ticks of an account


def _settle(sim: Engine, account: Account) -> None:
    for txn in sim.ledger.settle(account.id, sim.now):
        sim.txn(account, txn)  # Stripe's status moves at available_on, not when a payout takes the transaction


def _settle_tick(sim: Engine, account: Account) -> None:
    """Settle, then tick again while anything of `account` is still pending (the sweeps restart a stopped tick)."""
    _settle(sim, account)
    if sim.ledger.has_pending(account.id):
        sim.at(SETTLE_TICK_S * sim.p.delay_scale, _settle_tick, account, story=False)
    else:
        sim.ledger.settling.discard(account.id)


def sweep(sim: Engine, account: Account) -> None:
    """Make what settled `available` (paid out or not), then pay out `account`'s available balance if positive:
    automatically, or now and then by a manual request."""
    _settle(sim, account)
    if account.id not in sim.ledger.settling and sim.ledger.has_pending(account.id):
        sim.ledger.settling.add(account.id)
        sim.at(SETTLE_TICK_S * sim.p.delay_scale, _settle_tick, account, story=False)
    members = sim.ledger.take_available(account.id, sim.now)
    if members is None:
        return
    if sim.chance(sim.p.manual_payout_rate):
        _manual(sim, account, members)
        return
    amount = sum(t["net"] for t in members)
    poid = sim.ids.new("po")
    own = sim.new_txn(account, amount=-amount, fee=0, source=poid, txn_type="payout", category="payout",
                      description="STRIPE PAYOUT", available_now=True)
    own["status"] = "available"
    po = payout(poid, sim.now, amount, account.currency, sim.now + 2 * 86400, account.bank_account, own["id"])
    po["reconciliation_status"] = "in_progress"
    half = len(members) // 2
    for txn in members:
        txn["status"] = "available"
    for txn in members[:half]:
        sim.txn(account, txn, payout=poid)
    sim.txn(account, own, payout=poid)
    sim.emit("payout.created", po, account)
    sim.at(sim.between(30, 300), _in_transit, account, po, members[half:])


def _manual(sim: Engine, account: Account, members: list[dict[str, Any]]) -> None:
    instant = sim.chance(sim.p.instant_payout_share)
    amount = sum(t["net"] for t in members)
    poid = sim.ids.new("po")
    own = sim.new_txn(account, amount=-amount, fee=0, source=poid, txn_type="payout", category="payout",
                      description="STRIPE PAYOUT", available_now=True)
    own["status"] = "available"
    arrival = sim.now if instant else sim.now + 2 * 86400
    po = payout(poid, sim.now, amount, account.currency, arrival, account.bank_account, own["id"])
    po.update(automatic=False, method="instant" if instant else "standard", description=None)
    for txn in members:
        txn["status"] = "available"
        sim.txn(account, txn, paid_out_by=poid)
    sim.txn(account, own, paid_out_by=poid)
    sim.emit("payout.created", po, account, request=True)
    sim.at(sim.between(30, 120) if instant else sim.between(30, 300), _in_transit, account, po, [])


def _in_transit(sim: Engine, account: Account, po: dict[str, Any], rest: list[dict[str, Any]]) -> None:
    po["status"] = "in_transit"
    po["trace_id"] = {"status": "pending", "value": None}
    sim.emit("payout.updated", po, account, {"status": "pending"})
    delay = sim.between(60, 600) if po["method"] == "instant" else sim.between(600, 3600)
    sim.at(delay, _arrive, account, po, rest)


def _arrive(sim: Engine, account: Account, po: dict[str, Any], rest: list[dict[str, Any]]) -> None:
    if sim.chance(sim.p.payout_failure_rate):
        for txn in rest:
            sim.txn(account, txn, payout=po["id"])
        txn = sim.new_txn(account, amount=po["amount"], fee=0, source=po["id"], txn_type="payout_failure",
                          category="payout_reversal", description="STRIPE PAYOUT FAILURE", available_now=True)
        po.update(status="failed", failure_code="account_closed", failure_balance_transaction=txn["id"],
                  failure_message="The bank account has been closed.", reconciliation_status="not_applicable")
        sim.emit("payout.updated", po, account, {"status": "in_transit", "failure_code": None})
        sim.emit("payout.failed", po, account, {"status": "in_transit", "failure_code": None})
        return
    po["status"] = "paid"
    po["trace_id"] = {"status": "supported", "value": f"TRACE{po['id'][3:15].upper()}"}
    sim.emit("payout.updated", po, account, {"status": "in_transit"})
    sim.emit("payout.paid", po, account, {"status": "in_transit"})
    if po["automatic"]:
        sim.at(sim.p.reconciliation_delay, _reconciled, account, po, rest)


def _reconciled(sim: Engine, account: Account, po: dict[str, Any], rest: list[dict[str, Any]]) -> None:
    """Reconciliation done: every member is listed from now on; then `payout.reconciliation_completed`."""
    for txn in rest:
        sim.txn(account, txn, payout=po["id"])
    po["reconciliation_status"] = "completed"
    sim.emit("payout.reconciliation_completed", po, account, {"reconciliation_status": "in_progress"})
