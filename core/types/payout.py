"""payout -> Stripe_Payout__c by Stripe_Payout_Id__c (the payout's own fields; reconciliation is separate)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_amount_object, common_fields, date_str, money, require_status, text, upper,
    upsert,
)
from core.config import MappingConfig
from core.spec import StripeType

PAYOUT_STATUS: Mapping[str, str] = MappingProxyType({
    "pending": "Pending",
    "in_transit": "In Transit",
    "paid": "Paid",
    "failed": "Failed",
    "canceled": "Canceled",
})
PAYOUT_RANK: Mapping[str, int] = MappingProxyType({
    "pending": 0, "in_transit": 1, "paid": 2, "canceled": 2, "failed": 3,
})


# `reconciliation_status` in_progress -> completed after `paid` (`payout.reconciliation_completed`): a same-status
# snapshot with a completed reconciliation is later (and must not lose a same-second tie)
RECONCILIATION_RANK: Mapping[str, int] = MappingProxyType({"in_progress": 0, "not_applicable": 0, "completed": 1})


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """The status (a paid payout can still fail), then its reconciliation."""
    reconciliation = obj.get("reconciliation_status")
    return (statuses.status_rank(PAYOUT_RANK, obj),
            RECONCILIATION_RANK.get(reconciliation, 0) if isinstance(reconciliation, str) else 0)


def map_payout(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """One Stripe_Payout__c upsert."""
    obj, payout_id, currency, amount = check_amount_object("payout", obj)
    automatic = obj.get("automatic")
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(PAYOUT_STATUS, obj, "payout"),
        "Arrival_Date__c": date_str(obj.get("arrival_date")),
        "Automatic__c": automatic if isinstance(automatic, bool) else None,
        "Failure_Code__c": text(obj.get("failure_code"), 255),
        "Failure_Message__c": text(obj.get("failure_message"), 255),
    })
    return [upsert("Stripe_Payout__c", "Stripe_Payout_Id__c", payout_id, fields, meta.version, meta.event_id)]


SPEC = StripeType(
    name="payout", list_path="/v1/payouts", rank=rank, mapper=map_payout,
    sobjects=("Stripe_Payout__c",), external_id_field="Stripe_Payout_Id__c", write_rank=20,
    statuses=PAYOUT_STATUS, status_ranks=PAYOUT_RANK, terminal=frozenset({"failed"}), backfill_order=4,
)
