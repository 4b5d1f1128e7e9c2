"""dispute -> Stripe_Dispute__c by Stripe_Dispute_Id__c, child of its charge's Stripe_Payment__c.

Dispute fee (and the fee returned on a win), balance transaction and payout belong to the balance-transaction
mapping. The payment's status is its charge's (`disputed` -> Disputed).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_amount_object, common_fields, datetime_str, money,
    payment_parent, require_status, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType

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
DISPUTE_RANK: Mapping[str, int] = MappingProxyType({
    "warning_needs_response": 0,
    "warning_under_review": 1,
    "needs_response": 2,
    "under_review": 3,
    # an appeal follows the review (no `lost` in between); its outcome, won or lost, comes after it
    "appeal_needs_response": 4,
    "appeal_under_review": 5,
    "warning_closed": 6,
    "won": 6,
    "lost": 6,
    "prevented": 6,
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
    """The Stripe_Dispute__c upsert. The payment's status stays its charge's (`disputed` -> Disputed): a second
    writer of `Stripe_Payment__c.Status__c` would need an ordering version on that field (docs/status-mapping.md)."""
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
    return out


SPEC = StripeType(
    name="dispute", list_path="/v1/disputes", rank=rank, mapper=map_dispute,
    sobjects=("Stripe_Dispute__c",), external_id_field="Stripe_Dispute_Id__c", write_rank=60,
    statuses=DISPUTE_STATUS, status_ranks=DISPUTE_RANK,
    terminal=frozenset({"warning_closed", "won", "lost", "prevented"}), backfill_order=2, child_of_charge=True,
)
