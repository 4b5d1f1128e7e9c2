"""refund -> Stripe_Refund__c by Stripe_Refund_Id__c, child of its charge's Stripe_Payment__c.

Fee, net, balance transaction and payout belong to the balance-transaction mapping.
"""

from __future__ import annotations

from typing import Any

from streams import statuses
from streams.mapping.common import (
    EventMeta, FieldValue, MappingConfig, check_object, common_fields, datetime_str, money, payment_parent,
    require_amount, require_currency, require_id, require_status, text, upper, upsert,
)


def map_refund(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """One Stripe_Refund__c upsert."""
    obj = check_object("refund", obj)
    refund_id = require_id(obj)
    currency = require_currency(obj)
    amount = require_amount(obj, "amount")
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(statuses.REFUND_STATUS, obj, "refund"),
        "Reason__c": text(obj.get("reason"), 50),
        "Failure_Reason__c": text(obj.get("failure_reason"), 255),
        "Created_At__c": datetime_str(obj.get("created")),
    })
    parents = payment_parent(obj.get("charge"))
    return [upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", refund_id, fields, meta.version, meta.event_id, parents)]
