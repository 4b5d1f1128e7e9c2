"""Dispute stories: an inquiry (warning_*), or a chargeback with its funds withdrawn, decided won or lost, some
decisions against the merchant appealed (`appeal_needs_response` -> `appeal_under_review` -> won | lost).

Rules (stripe-python 16.1 `_dispute.py` and docs.stripe.com):
- statuses of the pinned version: `warning_needs_response`, `warning_under_review`, `warning_closed`,
  `needs_response`, `under_review`, `appeal_needs_response`, `appeal_under_review`, `won`, `lost`, `prevented`
  (`status` Literal); changelog 2026-10-28.endive "Adds support for submitting evidence to appeal dispute
  decisions": "adds the appeal_needs_response and appeal_under_review enum values to the status property to track
  the appeal's status", "You can submit appeal evidence only for eligible disputes with a status of
  appeal_needs_response". Decision (not documented): an appealed decision goes from `under_review` straight to
  `appeal_needs_response` (no `lost` and no `charge.dispute.closed` in between); `charge.dispute.closed` comes once,
  with the final `won` or `lost`.
- `balance_transactions`: "List of zero, one, or two balance transactions that show funds withdrawn and reinstated
  to your Stripe account as a result of this dispute." The withdrawal carries the dispute fee (`fee` 1500,
  "Dispute fee"); on a win the reinstatement returns the amount and the fee (`reporting_category`
  `dispute_reversal`, fee -1500), as in the published dj-stripe fixture `dispute_dp_funds_reinstated_full`.
- `charge.disputed` ("Whether the charge has been disputed.") stays true after a won dispute.
"""

from __future__ import annotations

from typing import Any

from .engine import Engine
from .fx import DISPUTE_FEE_MINOR, convert, rate_as_json_number
from .ledger import Account
from .objects_other import dispute


def start_dispute(sim: Engine, account: Account, ch: dict[str, Any], rate: Any) -> None:
    """Open a dispute on `ch` (the captured amount); a chargeback withdraws the funds and the fee at once."""
    inquiry = sim.chance(0.3)
    reason = sim.rng.choice(("fraudulent", "product_not_received", "general", "duplicate"))
    dp = dispute(sim.ids.new("dp"), sim.now, ch, ch["amount_captured"], reason, inquiry, sim.now + 7 * 86400)
    sim.emit("charge.dispute.created", dp, account)
    ch["disputed"] = True
    sim.emit("charge.updated", ch, account, {"disputed": False})
    if not inquiry:
        settled = convert(dp["amount"], ch["currency"], account.currency, rate)
        fee = DISPUTE_FEE_MINOR[account.currency]
        txn = sim.new_txn(account, amount=-settled, fee=fee, source=dp["id"], txn_type="adjustment",
                          category="dispute", description=f"Chargeback withdrawal for {ch['id']}",
                          rate=rate_as_json_number(rate), fee_description="Dispute fee", available_now=True)
        dp["balance_transactions"] = [txn]
        sim.emit("charge.dispute.funds_withdrawn", dp, account, {"balance_transactions": []})
    sim.at(sim.between(600, 3600), _evidence, account, dp, ch, rate, inquiry)


def _evidence(sim: Engine, account: Account, dp: dict[str, Any], ch: dict[str, Any], rate: Any,
              inquiry: bool) -> None:
    previous_status = dp["status"]
    dp["status"] = "warning_under_review" if inquiry else "under_review"
    dp["evidence"]["uncategorized_text"] = "Customer signed for the delivery."
    dp["evidence_details"].update(has_evidence=True, submission_count=1)
    sim.emit("charge.dispute.updated", dp, account,
             {"status": previous_status, "evidence": {"uncategorized_text": None},
              "evidence_details": {"has_evidence": False, "submission_count": 0}}, request=True)
    sim.at(sim.between(600, 3600), _decide, account, dp, ch, rate, inquiry)


def _decide(sim: Engine, account: Account, dp: dict[str, Any], ch: dict[str, Any], rate: Any,
            inquiry: bool) -> None:
    if inquiry:
        _close(sim, account, dp, ch, rate, "warning_closed")
        return
    won = sim.chance(0.5)
    if not won and sim.chance(sim.p.appeal_rate):
        previous = {"status": dp["status"], "evidence_details": {"due_by": dp["evidence_details"]["due_by"]}}
        dp["status"] = "appeal_needs_response"
        dp["evidence_details"]["due_by"] = sim.now + 10 * 86400
        sim.emit("charge.dispute.updated", dp, account, previous)
        sim.at(sim.between(600, 3600), _appeal, account, dp, ch, rate)
        return
    _close(sim, account, dp, ch, rate, "won" if won else "lost")


def _appeal(sim: Engine, account: Account, dp: dict[str, Any], ch: dict[str, Any], rate: Any) -> None:
    """Submit appeal evidence (`evidence.appeal.card`, stripe-python `Dispute.Evidence.Appeal.Card`)."""
    dp["evidence"]["appeal"] = {"card": {"reason_for_filing": "The cardholder signed for the delivery.",
                                         "supporting_files": [sim.ids.new("file")]}}
    dp["status"] = "appeal_under_review"
    dp["evidence_details"]["submission_count"] += 1
    sim.emit("charge.dispute.updated", dp, account,
             {"status": "appeal_needs_response", "evidence": {"appeal": None},
              "evidence_details": {"submission_count": dp["evidence_details"]["submission_count"] - 1}},
             request=True)
    sim.at(sim.between(1800, 7200), _appeal_decided, account, dp, ch, rate)


def _appeal_decided(sim: Engine, account: Account, dp: dict[str, Any], ch: dict[str, Any], rate: Any) -> None:
    _close(sim, account, dp, ch, rate, "won" if sim.chance(0.4) else "lost")


def _close(sim: Engine, account: Account, dp: dict[str, Any], ch: dict[str, Any], rate: Any, status: str) -> None:
    """The final decision; a won chargeback reinstates the amount and returns the dispute fee."""
    previous_status = dp["status"]
    dp["status"] = status
    sim.emit("charge.dispute.closed", dp, account, {"status": previous_status})
    if status != "won":
        return
    settled = convert(dp["amount"], ch["currency"], account.currency, rate)
    fee = DISPUTE_FEE_MINOR[account.currency]
    txn = sim.new_txn(account, amount=settled, fee=-fee, source=dp["id"], txn_type="adjustment",
                      category="dispute_reversal", description=f"Chargeback reversal for {ch['id']}",
                      rate=rate_as_json_number(rate), fee_description="Dispute fee refund", available_now=True)
    previous = {"balance_transactions": list(dp["balance_transactions"])}
    dp["balance_transactions"] = [*dp["balance_transactions"], txn]
    sim.emit("charge.dispute.funds_reinstated", dp, account, previous)
