"""payout -> Stripe_Payout__c by Stripe_Payout_Id__c (the payout's own fields; reconciliation is separate)."""

from __future__ import annotations

from typing import Any

from streams import statuses
from streams.mapping.common import (
    EventMeta, FieldValue, MappingConfig, check_object, common_fields, date_str, money, require_amount,
    require_currency, require_id, require_status, text, upper, upsert,
)


def map_payout(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """One Stripe_Payout__c upsert."""
    obj = check_object("payout", obj)
    payout_id = require_id(obj)
    currency = require_currency(obj)
    amount = require_amount(obj, "amount")
    automatic = obj.get("automatic")
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(statuses.PAYOUT_STATUS, obj, "payout"),
        "Arrival_Date__c": date_str(obj.get("arrival_date")),
        "Automatic__c": automatic if isinstance(automatic, bool) else None,
        "Failure_Code__c": text(obj.get("failure_code"), 255),
        "Failure_Message__c": text(obj.get("failure_message"), 255),
    })
    return [upsert("Stripe_Payout__c", "Stripe_Payout_Id__c", payout_id, fields, meta.version, meta.event_id)]
