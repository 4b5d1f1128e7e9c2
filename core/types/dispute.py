"""dispute -> Stripe_Dispute__c by Stripe_Dispute_Id__c, child of its charge's Stripe_Payment__c.

Dispute fee, balance transaction and payout belong to the balance-transaction mapping.
"""

from __future__ import annotations

from typing import Any

from streams import statuses
from streams.mapping.common import (
    EventMeta, FieldValue, MappingConfig, check_object, common_fields, datetime_str, money, payment_parent,
    require_amount, require_currency, require_id, require_status, text, upper, upsert,
)


def map_dispute(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """One Stripe_Dispute__c upsert."""
    obj = check_object("dispute", obj)
    dispute_id = require_id(obj)
    currency = require_currency(obj)
    amount = require_amount(obj, "amount")
    details = obj.get("evidence_details")
    due_by = details.get("due_by") if isinstance(details, dict) else None
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(statuses.DISPUTE_STATUS, obj, "dispute"),
        "Reason__c": text(obj.get("reason"), 50),
        "Evidence_Due_By__c": datetime_str(due_by),
        "Created_At__c": datetime_str(obj.get("created")),
    })
    parents = payment_parent(obj.get("charge"))
    return [upsert("Stripe_Dispute__c", "Stripe_Dispute_Id__c", dispute_id, fields, meta.version, meta.event_id, parents)]
