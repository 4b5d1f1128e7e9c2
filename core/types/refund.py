"""refund -> Stripe_Refund__c by Stripe_Refund_Id__c, child of its charge's Stripe_Payment__c.

Fee, net, balance transaction and payout belong to the balance-transaction mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_amount_object, common_fields, datetime_str, money, payment_parent,
    require_status, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType

REFUND_STATUS: Mapping[str, str] = MappingProxyType({
    "pending": "Pending",
    "requires_action": "Requires Action",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "canceled": "Canceled",
})
REFUND_RANK: Mapping[str, int] = MappingProxyType({
    "pending": 0, "requires_action": 1, "succeeded": 2, "canceled": 2, "failed": 3,
})


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """The status only (a refund can still fail after it succeeded)."""
    return (statuses.status_rank(REFUND_RANK, obj),)


def map_refund(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """One Stripe_Refund__c upsert."""
    obj, refund_id, currency, amount = check_amount_object("refund", obj)
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(REFUND_STATUS, obj, "refund"),
        "Reason__c": text(obj.get("reason"), 50),
        "Failure_Reason__c": text(obj.get("failure_reason"), 255),
        "Created_At__c": datetime_str(obj.get("created")),
    })
    parents = payment_parent(obj.get("charge"))
    return [upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", refund_id, fields, meta.version, meta.event_id, parents)]


SPEC = StripeType(
    name="refund", list_path="/v1/refunds", rank=rank, mapper=map_refund,
    sobjects=("Stripe_Refund__c",), external_id_field="Stripe_Refund_Id__c", write_rank=50,
    statuses=REFUND_STATUS, status_ranks=REFUND_RANK, terminal=frozenset({"failed"}), backfill_order=1,
    child_of_charge=True,
)
