"""Reconcile's expectations from truth lines the simulator writes for a real account's cases: manual payouts
(Stripe cannot list their members) and deleted drafts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.config import MappingConfig
from ops.reconcile.expected import expected_records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "stripe-openapi" / "objects"


def _payout(**changes: Any) -> dict[str, Any]:
    payout: dict[str, Any] = json.loads((FIXTURES / "payout.json").read_text())
    payout.update(changes)
    return payout


def test_a_manual_payout_has_its_own_state_and_no_member_list() -> None:
    po = _payout(id="po_manual", automatic=False, reconciliation_status="not_applicable", amount=5000,
                 currency="usd", status="paid")
    truth = [{"kind": "object", "type": "payout", "account": None, "object": po},
             {"kind": "payout", "id": "po_manual", "account": None, "amount": 5000, "currency": "usd",
              "automatic": False, "reconciliation_status": "not_applicable", "members": None, "sum_of_nets": None}]
    expected, _ = expected_records(truth, MappingConfig())
    record = expected[("Stripe_Payout__c", "po_manual")]
    # docs.stripe.com payout reconciliation: for manual payouts Stripe "can't identify which transactions are
    # included"; paysync's rule (docs/status-mapping.md): its own state, never a Discrepancy
    assert record["Reconciliation_Status__c"] == "Not Applicable (manual payout)"


def test_an_automatic_payout_still_in_reconciliation_is_pending_not_a_discrepancy() -> None:
    po = _payout(id="po_auto", automatic=True, reconciliation_status="in_progress", amount=5000, currency="usd")
    truth = [{"kind": "object", "type": "payout", "account": None, "object": po},
             {"kind": "payout", "id": "po_auto", "account": None, "amount": 5000, "currency": "usd",
              "automatic": True, "reconciliation_status": "in_progress", "members": [], "sum_of_nets": 0}]
    expected, _ = expected_records(truth, MappingConfig())
    assert expected[("Stripe_Payout__c", "po_auto")]["Reconciliation_Status__c"] == "Pending"


def test_a_deleted_draft_is_expected_as_deleted() -> None:
    truth = [{"kind": "deleted", "type": "invoice", "account": "acct_1", "id": "in_draft"}]
    expected, _ = expected_records(truth, MappingConfig())
    assert expected[("Stripe_Invoice__c", "in_draft")]["Status__c"] == "Deleted"
