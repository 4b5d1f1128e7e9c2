"""dispute -> Stripe_Dispute__c by Stripe_Dispute_Id__c, child of its charge's Stripe_Payment__c.

Dispute fee (and the fee returned on a win), balance transaction and payout belong to the balance-transaction
mapping. The dispute owns its charge's payment Status__c while the charge is disputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_amount_object, common_fields, datetime_str, identity_fields, money,
    payment_parent, require_status, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from paysync.keys import ref_id

DISPUTE_STATUS: Mapping[str, str] = MappingProxyType({
    "warning_needs_response": "Warning Needs Response",
    "warning_under_review": "Warning Under Review",
    "warning_closed": "Warning Closed",
    "needs_response": "Needs Response",
    "under_review": "Under Review",
    "won": "Won",
    "lost": "Lost",
    "prevented": "Prevented",
    "appeal_needs_response": "Appeal Needs Response",
    "appeal_under_review": "Appeal Under Review",
})
# Dispute status -> the payment status of its charge's Stripe_Payment__c (the dispute drives it: Stripe keeps
# `charge.disputed=true` after a won dispute, so the charge cannot tell the outcome). Open, in appeal or lost:
# Disputed (a lost dispute's money is gone for good). Won, warning (inquiry) closed, prevented: Succeeded —
# the payment's money stayed with the merchant.
DISPUTE_PAYMENT_STATUS: Mapping[str, str] = MappingProxyType({
    "warning_needs_response": statuses.DISPUTED,
    "warning_under_review": statuses.DISPUTED,
    "needs_response": statuses.DISPUTED,
    "under_review": statuses.DISPUTED,
    "appeal_needs_response": statuses.DISPUTED,
    "appeal_under_review": statuses.DISPUTED,
    "lost": statuses.DISPUTED,
    "won": statuses.SUCCEEDED,
    "warning_closed": statuses.SUCCEEDED,
    "prevented": statuses.SUCCEEDED,
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
    # an appeal follows a lost decision; its outcome (won/lost) follows it a later second
    "appeal_needs_response": 5,
    "appeal_under_review": 6,
})


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Status, then evidence submissions, then whether it has evidence."""
    details = obj.get("evidence_details")
    details = details if isinstance(details, dict) else {}
    return (
        statuses.status_rank(DISPUTE_RANK, obj),
        statuses.int_or_zero(details.get("submission_count")),
        statuses.flag(details.get("has_evidence")),
    )


def map_dispute(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Dispute__c upsert, then the payment status of its charge (`DISPUTE_PAYMENT_STATUS`).

    The payment-status partial is keyed by the charge id; it reaches the sink after the charge's own upserts of
    the same partition (a dispute's events are keyed by its charge), and the charge leaves Status__c out while
    `disputed` is true, so the two never fight over it.
    """
    obj, dispute_id, currency, amount = check_amount_object("dispute", obj)
    details = obj.get("evidence_details")
    due_by = details.get("due_by") if isinstance(details, dict) else None
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(DISPUTE_STATUS, obj, "dispute"),
        "Reason__c": text(obj.get("reason"), 50),
        "Evidence_Due_By__c": datetime_str(due_by),
        "Created_At__c": datetime_str(obj.get("created")),
    })
    parents = payment_parent(obj.get("charge"))
    out = [upsert("Stripe_Dispute__c", "Stripe_Dispute_Id__c", dispute_id, fields, meta.version, meta.event_id, parents)]
    charge_id = ref_id(obj.get("charge"))
    if charge_id:
        payment: dict[str, FieldValue] = identity_fields(meta.account, meta.livemode, cfg)
        payment["Status__c"] = DISPUTE_PAYMENT_STATUS[str(obj["status"])]
        out.append(upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", charge_id, payment, meta.version, meta.event_id))
    return out


SPEC = StripeType(
    name="dispute", list_path="/v1/disputes", rank=rank, mapper=map_dispute,
    sobjects=("Stripe_Dispute__c",), external_id_field="Stripe_Dispute_Id__c", write_rank=60,
    statuses=DISPUTE_STATUS, status_ranks=DISPUTE_RANK,
    terminal=frozenset({"warning_closed", "won", "prevented"}), backfill_order=2, child_of_charge=True,
)
