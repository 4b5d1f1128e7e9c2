"""charge -> Stripe_Payment__c (+ Opportunity/Order payment status).

Ownership: the charge owns the payment's status, amounts and card fields, and the
Opportunity/Order `Stripe_Payment_Status__c`; the payment intent (`core.types.payment_intent`) owns the
`Opportunity__c`/`Order__c` links of its latest charge (a charge without a payment intent owns its own
links). Fee, net, settlement and payout come from the balance
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    OPPORTUNITY_PREFIX, ORDER_PREFIX, EventMeta, FieldValue, MappingError, check_object, common_fields,
    customer_parent, datetime_str, money, parent, payment_status_upserts, require_amount, require_currency,
    require_id, salesforce_id, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from paysync.keys import ref_id

SOBJECT = "Stripe_Payment__c"
EXTERNAL_ID = "Stripe_Charge_Id__c"

CHARGE_RANK: Mapping[str, int] = MappingProxyType({"pending": 0, "failed": 1, "succeeded": 1})


def charge_payment_status(charge: Mapping[str, Any]) -> str | None:
    """The payment status of a charge snapshot, first matching rule wins; None for an unknown Stripe status.

    failed -> Failed; disputed -> Disputed; uncaptured and refunded (authorization released) -> Canceled;
    fully refunded -> Refunded; amount_refunded > 0 -> Partially Refunded; pending -> Pending;
    succeeded + captured -> Succeeded; succeeded + uncaptured -> Pending.
    """
    status = charge.get("status")
    if status == "failed":
        return statuses.FAILED
    if status not in ("succeeded", "pending"):
        return None
    captured = bool(charge.get("captured"))
    refunded_amount = charge.get("amount_refunded") or 0
    if charge.get("disputed"):
        return statuses.DISPUTED
    if charge.get("refunded") and not captured:
        return statuses.CANCELED
    captured_amount = charge.get("amount_captured")
    if not isinstance(captured_amount, int) or isinstance(captured_amount, bool):
        captured_amount = charge.get("amount") or 0
    if charge.get("refunded") or (captured and refunded_amount > 0 and refunded_amount >= captured_amount):
        return statuses.REFUNDED
    if isinstance(refunded_amount, int) and refunded_amount > 0:
        return statuses.PARTIALLY_REFUNDED
    if status == "pending":
        return statuses.PENDING
    return statuses.SUCCEEDED if captured else statuses.PENDING


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Status, then captured, amounts captured and refunded, refunded, disputed: each only grows."""
    return (
        statuses.status_rank(CHARGE_RANK, obj),
        statuses.flag(obj.get("captured")),
        statuses.int_or_zero(obj.get("amount_captured")),
        statuses.int_or_zero(obj.get("amount_refunded")),
        statuses.flag(obj.get("refunded")),
        statuses.flag(obj.get("disputed")),
    )


def _card(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """Brand and last4 only — no other card data ever leaves the stream."""
    details = obj.get("payment_method_details")
    card = details.get("card") if isinstance(details, dict) else None
    if not isinstance(card, dict):
        source = obj.get("source")  # old API shapes: the card is the charge's source
        card = source if isinstance(source, dict) and source.get("object") == "card" else None
    if not isinstance(card, dict):
        return None, None
    last4 = card.get("last4")
    return text(card.get("brand"), 50), (last4 if isinstance(last4, str) and len(last4) == 4 else None)


def links(metadata: Any, cfg: MappingConfig) -> dict[str, FieldValue]:
    """`Opportunity__c` / `Order__c` from valid Salesforce ids in `metadata` (None where there is none)."""
    return {
        "Opportunity__c": salesforce_id(metadata, cfg.opportunity_metadata_keys, OPPORTUNITY_PREFIX),
        "Order__c": salesforce_id(metadata, cfg.order_metadata_keys, ORDER_PREFIX),
    }


def _amounts(obj: dict[str, Any], currency: str) -> dict[str, FieldValue]:
    amount = require_amount(obj, "amount")
    refunded = obj.get("amount_refunded")
    refunded = 0 if refunded is None else require_amount(obj, "amount_refunded")
    captured_amount = obj.get("amount_captured")
    if captured_amount is not None:
        captured_amount = require_amount(obj, "amount_captured")
    elif obj.get("captured") is True:
        captured_amount = amount  # API versions before amount_captured existed
    return {
        "Amount__c": money(amount, currency),
        "Amount_Captured__c": money(captured_amount, currency),
        "Amount_Refunded__c": money(refunded, currency),
    }


def map_charge(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Payment__c upsert of a charge, then Opportunity/Order status upserts from its metadata."""
    obj = check_object("charge", obj)
    charge_id = require_id(obj)
    currency = require_currency(obj)
    amounts = _amounts(obj, currency)
    if not isinstance(obj.get("status"), str):
        raise MappingError("MISSING_FIELD", "charge status is missing")
    status = charge_payment_status(obj)
    if status is None:
        raise MappingError("UNKNOWN_STATUS", f"charge status {obj.get('status')!r} has no mapping")
    brand, last4 = _card(obj)
    paid = obj.get("status") == "succeeded" and obj.get("paid") is not False
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update(amounts)
    fields.update({
        "Currency__c": upper(currency),
        "Status__c": status,
        "Stripe_Status__c": text(obj.get("status"), 50),
        "Failure_Code__c": text(obj.get("failure_code"), 255),
        "Failure_Message__c": text(obj.get("failure_message"), 255),
        "Card_Brand__c": brand,
        "Card_Last4__c": last4,
        "Paid_At__c": datetime_str(obj.get("created")) if paid else None,
        "Description__c": text(obj.get("description"), 255),
        "Stripe_Payment_Intent_Id__c": ref_id(obj.get("payment_intent")),
    })
    if ref_id(obj.get("payment_intent")) is None:
        fields.update(links(obj.get("metadata"), cfg))
    parents = customer_parent(obj.get("customer"), cfg)
    invoice = ref_id(obj.get("invoice"))
    if invoice:
        parents.append(parent("Invoice__r", "Stripe_Invoice__c", "Stripe_Invoice_Id__c", invoice))
    out = [upsert(SOBJECT, EXTERNAL_ID, charge_id, fields, meta.version, meta.event_id, parents)]
    out.extend(payment_status_upserts(obj.get("metadata"), status, meta, cfg))
    return out


SPEC = StripeType(
    name="charge", list_path="/v1/charges", rank=rank, mapper=map_charge,
    sobjects=(SOBJECT,), external_id_field=EXTERNAL_ID, write_rank=40,
    status_ranks=CHARGE_RANK, terminal=frozenset({"failed", "succeeded"}), backfill_order=0,
)
