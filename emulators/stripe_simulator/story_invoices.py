"""Invoice stories: draft -> deleted, or draft -> open -> paid | void | uncollectible, with failed payment
attempts on the way; a paid invoice's payment is linked by an `invoice_payment` (`invoice_payment.paid`).

Drafts are deleted, never voided: docs.stripe.com "Delete a draft invoice": "Permanently deletes a one-off invoice
draft. This cannot be undone. Attempts to delete invoices that are no longer in a draft state will fail; once an
invoice has been finalized or if an invoice is for a subscription, it must be voided." (event `invoice.deleted`;
a retrieve afterwards answers 404 `resource_missing`). Here an open invoice is voided after a failed attempt.

At the legacy API version the invoice also carries `charge`, `payment_intent`, `paid`, `paid_out_of_band`,
`application_fee_amount`, `transfer_data` (`LEGACY_KEY`, see `versions.py`): the latest attempt's charge and PI.
"""

from __future__ import annotations

from typing import Any

from .engine import Engine
from .ledger import Account
from .objects_other import invoice, invoice_payment
from .records import LEGACY_KEY
from .story_payments import draw_amount, pick_customer, start_payment

_RETRY_DELAY = (600.0, 3600.0)


def start_invoice(sim: Engine, account: Account) -> None:
    """Create a draft invoice and plan its life: paid (maybe after failures), voided or uncollectible."""
    cust = pick_customer(sim, account)
    amount, currency = draw_amount(sim)
    inid = sim.ids.new("in")
    number = f"{cust['invoice_prefix']}-{cust['next_invoice_sequence']:04d}"
    previous_sequence = cust["next_invoice_sequence"]
    cust["next_invoice_sequence"] += 1
    sim.emit("customer.updated", cust, account, {"next_invoice_sequence": previous_sequence})
    inv = invoice(inid, sim.now, cust, amount, currency, number, sim.ids.new("il"), "Monthly service",
                  sim.now + 30 * 86400)
    inv[LEGACY_KEY] = {"charge": None, "paid": False, "paid_out_of_band": False, "payment_intent": None,
                       "application_fee_amount": None, "transfer_data": None}
    sim.emit("invoice.created", inv, account, request=True)
    if sim.chance(sim.p.draft_delete_rate):
        sim.at(sim.between(300, 1800), _delete, account, inv)
        return
    roll = sim.rng.random()
    plan = "void" if roll < 0.15 else ("uncollectible" if roll < 0.3 else "paid")
    failures = {"void": 1, "uncollectible": sim.rng.choice((1, 2))}.get(plan, 1 if sim.chance(0.3) else 0)
    sim.at(sim.between(300, 1800), _finalize, account, inv, cust, plan, failures)


def _finalize(sim: Engine, account: Account, inv: dict[str, Any], cust: dict[str, Any], plan: str,
              failures: int) -> None:
    inv.update(status="open", effective_at=sim.now, hosted_invoice_url=f"https://invoice.stripe.com/i/{inv['id']}",
               invoice_pdf=f"https://pay.stripe.com/invoice/{inv['id']}/pdf")
    inv["status_transitions"]["finalized_at"] = sim.now
    sim.emit("invoice.finalized", inv, account,
             {"status": "draft", "effective_at": None, "status_transitions": {"finalized_at": None}})
    _attempt(sim, account, inv, cust, plan, failures)


def _attempt(sim: Engine, account: Account, inv: dict[str, Any], cust: dict[str, Any], plan: str,
             failures: int) -> None:
    fail = failures > 0

    def done(sim: Engine, succeeded: bool, pi: dict[str, Any]) -> None:
        previous = {"attempt_count": inv["attempt_count"], "attempted": inv["attempted"]}
        inv["attempt_count"] += 1
        inv["attempted"] = True
        inv[LEGACY_KEY].update(charge=pi["latest_charge"], payment_intent=pi["id"])
        if not succeeded:
            more = failures - 1 > 0 or plan == "paid"
            inv["next_payment_attempt"] = sim.now + int(_RETRY_DELAY[1]) if more else None
            sim.emit("invoice.payment_failed", inv, account, previous)
            if more:
                sim.at(sim.between(*_RETRY_DELAY), _attempt, account, inv, cust, plan, failures - 1)
            else:
                sim.at(sim.between(*_RETRY_DELAY), _void if plan == "void" else _uncollectible, account, inv)
            return
        paid_at = sim.now
        ip = invoice_payment(sim.ids.new("inpay"), inv["status_transitions"]["finalized_at"] or paid_at, inv, pi,
                             paid_at)
        sim.emit("invoice_payment.paid", ip, account)
        previous.update(status="open", amount_paid=0, amount_remaining=inv["amount_due"])
        inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0, next_payment_attempt=None)
        inv["status_transitions"]["paid_at"] = paid_at
        inv[LEGACY_KEY]["paid"] = True
        previous["status_transitions"] = {"paid_at": None}
        sim.emit("invoice.paid", inv, account, previous)
        sim.emit("invoice.payment_succeeded", inv, account, previous)

    start_payment(sim, account, cust, inv["amount_due"], inv["currency"], f"Payment for Invoice {inv['number']}",
                  fail, on_done=done, invoice_id=inv["id"])


def _delete(sim: Engine, account: Account, inv: dict[str, Any]) -> None:
    """Delete the draft: `invoice.deleted` carries its last snapshot; the store forgets the object."""
    sim.emit("invoice.deleted", inv, account, request=True)


def _void(sim: Engine, account: Account, inv: dict[str, Any]) -> None:
    previous_status = inv["status"]
    inv.update(status="void", next_payment_attempt=None)
    inv["status_transitions"]["voided_at"] = sim.now
    sim.emit("invoice.voided", inv, account, {"status": previous_status, "status_transitions": {"voided_at": None}},
             request=True)


def _uncollectible(sim: Engine, account: Account, inv: dict[str, Any]) -> None:
    inv["status"] = "uncollectible"
    inv["status_transitions"]["marked_uncollectible_at"] = sim.now
    sim.emit("invoice.marked_uncollectible", inv, account,
             {"status": "open", "status_transitions": {"marked_uncollectible_at": None}}, request=True)
