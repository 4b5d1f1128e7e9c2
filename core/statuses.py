"""Normalization tables: Stripe statuses -> the Salesforce picklist values of docs/data-model.md,
and the lifecycle rank of every Stripe status (used by `streams.order`).

One table per object type; `docs/status-mapping.md` documents them. Picklist values here must be
exactly those of the restricted picklists in the data model.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# Payment statuses (Stripe_Payment__c.Status__c, Opportunity/Order.Stripe_Payment_Status__c).
PENDING = "Pending"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
PARTIALLY_REFUNDED = "Partially Refunded"
REFUNDED = "Refunded"
DISPUTED = "Disputed"
CANCELED = "Canceled"
PAYMENT_STATUSES = frozenset({PENDING, SUCCEEDED, FAILED, PARTIALLY_REFUNDED, REFUNDED, DISPUTED, CANCELED})

REFUND_STATUS: Mapping[str, str] = MappingProxyType({
    "pending": "Pending",
    "requires_action": "Requires Action",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
})

DISPUTE_STATUS: Mapping[str, str] = MappingProxyType({
    "warning_needs_response": "Warning Needs Response",
    "warning_under_review": "Warning Under Review",
    "warning_closed": "Warning Closed",
    "needs_response": "Needs Response",
    "under_review": "Under Review",
    "won": "Won",
    "lost": "Lost",
    "prevented": "Prevented",
})

INVOICE_STATUS: Mapping[str, str] = MappingProxyType({
    "draft": "Draft",
    "open": "Open",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Uncollectible",
})

PAYOUT_STATUS: Mapping[str, str] = MappingProxyType({
    "pending": "Pending",
    "in_transit": "In Transit",
    "paid": "Paid",
    "failed": "Failed",
    "canceled": "Canceled",
})

# Invoice status -> payment status of the Opportunity/Order an invoice links to.
INVOICE_PAYMENT_STATUS: Mapping[str, str] = MappingProxyType({
    "draft": PENDING,
    "open": PENDING,
    "paid": SUCCEEDED,
    "void": CANCELED,
    "uncollectible": FAILED,
})

RECONCILIATION_PENDING = "Pending"
RECONCILED = "Reconciled"
RECONCILIATION_DISCREPANCY = "Discrepancy"


def charge_payment_status(charge: Mapping[str, Any]) -> str | None:
    """The payment status of a charge snapshot, first matching rule wins; None for an unknown Stripe status.

    failed -> Failed; disputed -> Disputed; uncaptured and refunded (authorization released) -> Canceled;
    fully refunded -> Refunded; amount_refunded > 0 -> Partially Refunded; pending -> Pending;
    succeeded + captured -> Succeeded; succeeded + uncaptured -> Pending.
    """
    status = charge.get("status")
    if status == "failed":
        return FAILED
    if status not in ("succeeded", "pending"):
        return None
    captured = bool(charge.get("captured"))
    refunded_amount = charge.get("amount_refunded") or 0
    if charge.get("disputed"):
        return DISPUTED
    if charge.get("refunded") and not captured:
        return CANCELED
    captured_amount = charge.get("amount_captured")
    if not isinstance(captured_amount, int) or isinstance(captured_amount, bool):
        captured_amount = charge.get("amount") or 0
    if charge.get("refunded") or (captured and refunded_amount > 0 and refunded_amount >= captured_amount):
        return REFUNDED
    if isinstance(refunded_amount, int) and refunded_amount > 0:
        return PARTIALLY_REFUNDED
    if status == "pending":
        return PENDING
    return SUCCEEDED if captured else PENDING


# Lifecycle ranks: a higher rank is later in the object's life. Terminal states rank highest;
# states that can follow a "terminal" one (a refund or payout failing after success, an
# uncollectible invoice being paid) rank above it. Unknown statuses rank UNKNOWN_RANK.
UNKNOWN_RANK = -1

CHARGE_RANK: Mapping[str, int] = MappingProxyType({"pending": 0, "failed": 1, "succeeded": 1})
PAYMENT_INTENT_RANK: Mapping[str, int] = MappingProxyType({
    "requires_payment_method": 0,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "requires_capture": 4,
    "succeeded": 5,
    "canceled": 5,
})
REFUND_RANK: Mapping[str, int] = MappingProxyType({
    "pending": 0, "requires_action": 1, "succeeded": 2, "canceled": 2, "failed": 3,
})
DISPUTE_RANK: Mapping[str, int] = MappingProxyType({
    "warning_needs_response": 0,
    "warning_under_review": 1,
    "needs_response": 2,
    "under_review": 3,
    "warning_closed": 4,
    "won": 4,
    "lost": 4,
    "prevented": 4,
})
INVOICE_RANK: Mapping[str, int] = MappingProxyType({
    "draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3,
})
PAYOUT_RANK: Mapping[str, int] = MappingProxyType({
    "pending": 0, "in_transit": 1, "paid": 2, "canceled": 2, "failed": 3,
})

TERMINAL_STATUSES: Mapping[str, frozenset[str]] = MappingProxyType({
    "payment_intent": frozenset({"succeeded", "canceled"}),
    "refund": frozenset({"failed"}),
    "dispute": frozenset({"warning_closed", "won", "lost", "prevented"}),
    "invoice": frozenset({"paid", "void"}),
    "payout": frozenset({"failed"}),
    "charge": frozenset({"failed", "succeeded"}),
})
