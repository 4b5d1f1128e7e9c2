"""payment_intent -> the links (`Opportunity__c`/`Order__c`) of its latest charge's Stripe_Payment__c."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_object, identity_fields, payment_status_upserts, require_amount,
    require_currency, require_id, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from core.types.charge import EXTERNAL_ID, SOBJECT, links
from paysync.keys import ref_id

PAYMENT_INTENT_RANK: Mapping[str, int] = MappingProxyType({
    "requires_payment_method": 0,
    "requires_confirmation": 1,
    "requires_action": 2,
    "processing": 3,
    "requires_capture": 4,
    "succeeded": 5,
    "canceled": 5,
})


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Charge attempted, then status, then amount received.

    A payment intent that has made a charge attempt is later than one that has not, even when both read
    requires_payment_method (created, then payment_failed in the same second).
    """
    charges = obj.get("charges")
    attempted = 1 if obj.get("latest_charge") or (charges or {}).get("data") else 0
    return (attempted, statuses.status_rank(PAYMENT_INTENT_RANK, obj), statuses.int_or_zero(obj.get("amount_received")))


def _latest_charge(obj: dict[str, Any]) -> str | None:
    """`latest_charge` (API 2022-11-15+), else the newest of the old `charges` list."""
    latest = ref_id(obj.get("latest_charge"))
    if latest:
        return latest
    charges = obj.get("charges")
    data = charges.get("data") if isinstance(charges, dict) else None
    if isinstance(data, list) and data:
        return ref_id(data[0])
    return None


def map_payment_intent(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """A partial Stripe_Payment__c upsert of the PI's latest charge (PI id + links), if it has one.

    A payment intent canceled without ever having a charge sets its Opportunity/Order to Canceled
    (with a charge, the charge owns that status).
    """
    obj = check_object("payment_intent", obj)
    require_id(obj)
    require_currency(obj)
    require_amount(obj, "amount")
    charge_id = _latest_charge(obj)
    if charge_id is None:
        if obj.get("status") == "canceled":
            return payment_status_upserts(obj.get("metadata"), statuses.CANCELED, meta, cfg)
        return []
    fields: dict[str, FieldValue] = identity_fields(meta.account, meta.livemode, cfg)
    fields.update(links(obj.get("metadata"), cfg))
    if not any(v is not None for k, v in fields.items() if k in ("Opportunity__c", "Order__c")):
        return []  # nothing of its own to write: the charge carries the payment intent id
    return [upsert(SOBJECT, EXTERNAL_ID, charge_id, fields, meta.version, meta.event_id)]


SPEC = StripeType(
    name="payment_intent", list_path="/v1/payment_intents", rank=rank, mapper=map_payment_intent,
    sobjects=(SOBJECT,), external_id_field=EXTERNAL_ID, write_rank=40,
    status_ranks=PAYMENT_INTENT_RANK, terminal=frozenset({"succeeded", "canceled"}),
    backfill_order=-1,  # before the charges it links to Opportunities/Orders (issue 19 point 7)
)
