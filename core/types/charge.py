"""charge -> Stripe_Payment__c (+ Opportunity/Order payment status); payment_intent -> the PI's links.

Ownership: the charge owns the payment's status, amounts and card fields, and the
Opportunity/Order `Stripe_Payment_Status__c`; the payment intent owns `Stripe_Payment_Intent_Id__c`
and the `Opportunity__c`/`Order__c` links of its latest charge (a charge without a payment intent
owns its own links). Fee, net, settlement and payout come from the balance transaction.
"""

from __future__ import annotations

from typing import Any

from streams import statuses
from streams.mapping.common import (
    OPPORTUNITY_PREFIX, ORDER_PREFIX, EventMeta, FieldValue, MappingConfig, MappingError, check_object,
    common_fields, customer_parent, datetime_str, identity_fields, money, parent, payment_status_upserts, ref_id,
    require_amount, require_currency, require_id, salesforce_id, text, upper, upsert,
)

SOBJECT = "Stripe_Payment__c"
EXTERNAL_ID = "Stripe_Charge_Id__c"


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


def _links(metadata: Any, cfg: MappingConfig) -> dict[str, FieldValue]:
    return {
        "Opportunity__c": salesforce_id(metadata, cfg.opportunity_metadata_keys, OPPORTUNITY_PREFIX),
        "Order__c": salesforce_id(metadata, cfg.order_metadata_keys, ORDER_PREFIX),
    }


def map_charge(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Payment__c upsert of a charge, then Opportunity/Order status upserts from its metadata."""
    obj = check_object("charge", obj)
    charge_id = require_id(obj)
    currency = require_currency(obj)
    amount = require_amount(obj, "amount")
    refunded = obj.get("amount_refunded")
    refunded = 0 if refunded is None else require_amount(obj, "amount_refunded")
    captured_amount = obj.get("amount_captured")
    if captured_amount is not None:
        captured_amount = require_amount(obj, "amount_captured")
    elif obj.get("captured") is True:
        captured_amount = amount  # API versions before amount_captured existed
    if not isinstance(obj.get("status"), str):
        raise MappingError("MISSING_FIELD", "charge status is missing")
    status = statuses.charge_payment_status(obj)
    if status is None:
        raise MappingError("UNKNOWN_STATUS", f"charge status {obj.get('status')!r} has no mapping")
    brand, last4 = _card(obj)
    paid = obj.get("status") == "succeeded" and obj.get("paid") is not False
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Amount_Captured__c": money(captured_amount, currency),
        "Amount_Refunded__c": money(refunded, currency),
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
        fields.update(_links(obj.get("metadata"), cfg))
    parents = customer_parent(obj.get("customer"), cfg)
    invoice = ref_id(obj.get("invoice"))
    if invoice:
        parents.append(parent("Invoice__r", "Stripe_Invoice__c", "Stripe_Invoice_Id__c", invoice))
    out = [upsert(SOBJECT, EXTERNAL_ID, charge_id, fields, meta.version, meta.event_id, parents)]
    out.extend(payment_status_upserts(obj.get("metadata"), status, meta, cfg))
    return out


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
    fields.update(_links(obj.get("metadata"), cfg))
    if not any(v is not None for k, v in fields.items() if k in ("Opportunity__c", "Order__c")):
        return []  # nothing of its own to write: the charge carries the payment intent id
    return [upsert(SOBJECT, EXTERNAL_ID, charge_id, fields, meta.version, meta.event_id)]
