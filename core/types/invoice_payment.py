"""invoice_payment (API 2025-03-31 "basil" and later) -> Stripe_Invoice_Payment__c, linking an invoice and its payment.

From basil `invoice.charge`, `invoice.payment_intent` and `charge.invoice` are gone; the link is this object
(`invoice_payment.paid`, `invoice.payments`). Its `payment` names a charge (`type=charge`: `payment.charge`)
or a payment intent (`type=payment_intent`: `payment.payment_intent`). Both shapes are mapped: a named charge
also gets `Invoice__r` on its Stripe_Payment__c (as the old `charge.invoice` gave it); a payment intent is kept
in Stripe_Payment_Intent_Id__c, the field Stripe_Payment__c carries too (Salesforce joins them by it).
Old-shape links (`core.types.charge`, `core.types.invoice`) keep working next to it: endpoints on different
API versions send both in one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_object, common_fields, datetime_str, identity_fields, money, optional_amount,
    parent, require_currency, require_id, require_status, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from paysync.keys import ref_id

SOBJECT = "Stripe_Invoice_Payment__c"
EXTERNAL_ID = "Stripe_Invoice_Payment_Id__c"

INVOICE_PAYMENT_STATUS: Mapping[str, str] = MappingProxyType({"open": "Open", "paid": "Paid", "canceled": "Canceled"})
INVOICE_PAYMENT_RANK: Mapping[str, int] = MappingProxyType({"open": 0, "paid": 1, "canceled": 1})


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Status, then amount paid."""
    return (statuses.status_rank(INVOICE_PAYMENT_RANK, obj), statuses.int_or_zero(obj.get("amount_paid")))


def _payment_ids(obj: dict[str, Any]) -> tuple[str | None, str | None]:
    """(charge id, payment intent id) named by `payment` (either may be absent)."""
    payment = obj.get("payment")
    if not isinstance(payment, dict):
        return None, None
    return ref_id(payment.get("charge")), ref_id(payment.get("payment_intent"))


def map_invoice_payment(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Invoice_Payment__c upsert, then `Invoice__r` on the named charge's Stripe_Payment__c."""
    obj = check_object("invoice_payment", obj)
    payment_id = require_id(obj)
    currency = require_currency(obj)
    invoice_id = ref_id(obj.get("invoice"))
    charge_id, intent_id = _payment_ids(obj)
    transitions = obj.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, dict) else None
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Status__c": require_status(INVOICE_PAYMENT_STATUS, obj, "invoice_payment"),
        "Amount_Paid__c": money(optional_amount(obj, "amount_paid"), currency),
        "Amount_Requested__c": money(optional_amount(obj, "amount_requested"), currency),
        "Currency__c": upper(currency),
        "Is_Default__c": obj.get("is_default") is True,
        "Paid_At__c": datetime_str(paid_at),
        "Stripe_Charge_Id__c": charge_id,
        "Stripe_Payment_Intent_Id__c": intent_id,
    })
    invoice_link = [parent("Invoice__r", "Stripe_Invoice__c", "Stripe_Invoice_Id__c", invoice_id)] if invoice_id else []
    payment_link = [parent("Payment__r", "Stripe_Payment__c", "Stripe_Charge_Id__c", charge_id)] if charge_id else []
    out = [upsert(SOBJECT, EXTERNAL_ID, payment_id, fields, meta.version, meta.event_id, invoice_link + payment_link)]
    if charge_id and invoice_link:
        identity = identity_fields(meta.account, meta.livemode, cfg)
        out.append(upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", charge_id, identity, meta.version,
                          meta.event_id, invoice_link))
    return out


# write_rank 45: after its parents, the invoice (30) and the payment (40).
SPEC = StripeType(
    name="invoice_payment", list_path="/v1/invoice_payments", rank=rank, mapper=map_invoice_payment,
    sobjects=(SOBJECT,), external_id_field=EXTERNAL_ID, write_rank=45,
    statuses=INVOICE_PAYMENT_STATUS, status_ranks=INVOICE_PAYMENT_RANK, terminal=frozenset({"paid", "canceled"}),
    backfill_order=5,  # after the invoices and payments it links (issue 19 point 7)
)
