"""invoice -> Stripe_Invoice__c by Stripe_Invoice_Id__c (+ Opportunity/Order payment status from its metadata)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    OPPORTUNITY_PREFIX, ORDER_PREFIX, EventMeta, FieldValue, check_object, common_fields,
    customer_parent, datetime_str, identity_fields, money, optional_amount, parent, payment_status_upserts,
    require_currency, require_id, require_status, salesforce_id, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from paysync.keys import ref_id

INVOICE_STATUS: Mapping[str, str] = MappingProxyType({
    "draft": "Draft",
    "open": "Open",
    "paid": "Paid",
    "void": "Void",
    "uncollectible": "Uncollectible",
})
DELETED = "Deleted"  # a deleted draft (`invoice.deleted`): Stripe deletes drafts, it does not void them
# Invoice status -> payment status of the Opportunity/Order an invoice links to.
INVOICE_PAYMENT_STATUS: Mapping[str, str] = MappingProxyType({
    "draft": statuses.PENDING,
    "open": statuses.PENDING,
    "paid": statuses.SUCCEEDED,
    "void": statuses.CANCELED,
    "uncollectible": statuses.FAILED,
})
INVOICE_RANK: Mapping[str, int] = MappingProxyType({
    "draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3,
})

URL_LENGTH = 255


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Status, then amount paid, then payment attempts, then deleted (only a draft is deleted: after it)."""
    return (
        statuses.status_rank(INVOICE_RANK, obj),
        statuses.int_or_zero(obj.get("amount_paid")),
        statuses.int_or_zero(obj.get("attempt_count")),
        statuses.flag(obj.get("deleted")),
    )


def _subscription(obj: dict[str, Any]) -> str | None:
    """`subscription` (API < 2025-03-31) or `parent.subscription_details.subscription` (basil and later)."""
    sub = ref_id(obj.get("subscription"))
    if sub:
        return sub
    parent_info = obj.get("parent")
    details = parent_info.get("subscription_details") if isinstance(parent_info, dict) else None
    return ref_id(details.get("subscription")) if isinstance(details, dict) else None


def map_deleted_invoice(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """A deleted draft: Status__c Deleted (the record stays: nothing is deleted in Salesforce), its Opportunity/Order
    Canceled (nothing will ever be paid through it). Works on the full invoice of `invoice.deleted` and on the
    `{id, object, deleted: true}` stub the DELETE call returns (no currency: only the status is written).
    """
    invoice_id = require_id(obj)
    currency = obj.get("currency") if isinstance(obj.get("currency"), str) else None
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields["Status__c"] = DELETED
    out = [upsert("Stripe_Invoice__c", "Stripe_Invoice_Id__c", invoice_id, fields, meta.version, meta.event_id)]
    out.extend(payment_status_upserts(obj.get("metadata"), statuses.CANCELED, meta, cfg))
    return out


def _old_shape_payment_link(obj: dict[str, Any], invoice_id: str, meta: EventMeta,
                            cfg: MappingConfig) -> list[dict[str, Any]]:
    """API < 2025-03-31: `invoice.charge` names the paying charge: its Stripe_Payment__c gets `Invoice__r`."""
    charge_id = ref_id(obj.get("charge"))
    if charge_id is None:
        return []
    link = parent("Invoice__r", "Stripe_Invoice__c", "Stripe_Invoice_Id__c", invoice_id)
    fields = identity_fields(meta.account, meta.livemode, cfg)
    return [upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", charge_id, fields, meta.version, meta.event_id, [link])]


def map_invoice(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Invoice__c upsert, its old-shape payment link, then Opportunity/Order status upserts."""
    obj = check_object("invoice", obj)
    invoice_id = require_id(obj)
    if obj.get("deleted") is True or meta.event_type == "invoice.deleted":
        return map_deleted_invoice(obj, meta, cfg)
    currency = require_currency(obj)
    status = require_status(INVOICE_STATUS, obj, "invoice")
    transitions = obj.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, dict) else None
    url = obj.get("hosted_invoice_url")
    attempts = obj.get("attempt_count")
    metadata = obj.get("metadata")
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Status__c": status,
        "Number__c": text(obj.get("number"), 255),
        "Currency__c": upper(currency),
        "Amount_Due__c": money(optional_amount(obj, "amount_due"), currency),
        "Amount_Paid__c": money(optional_amount(obj, "amount_paid"), currency),
        "Amount_Remaining__c": money(optional_amount(obj, "amount_remaining"), currency),
        "Total__c": money(optional_amount(obj, "total"), currency),
        "Due_Date__c": datetime_str(obj.get("due_date")),
        # a cut URL is a broken link: leave it empty rather than truncate
        "Hosted_Invoice_URL__c": url if isinstance(url, str) and 0 < len(url) <= URL_LENGTH else None,
        "Subscription_Id__c": _subscription(obj),
        "Attempt_Count__c": attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else None,
        "Paid_At__c": datetime_str(paid_at),
        "Opportunity__c": salesforce_id(metadata, cfg.opportunity_metadata_keys, OPPORTUNITY_PREFIX),
        "Order__c": salesforce_id(metadata, cfg.order_metadata_keys, ORDER_PREFIX),
    })
    parents = customer_parent(obj.get("customer"), cfg)
    out = [upsert("Stripe_Invoice__c", "Stripe_Invoice_Id__c", invoice_id, fields, meta.version, meta.event_id, parents)]
    out.extend(_old_shape_payment_link(obj, invoice_id, meta, cfg))
    out.extend(payment_status_upserts(metadata, INVOICE_PAYMENT_STATUS[obj["status"]], meta, cfg))
    return out


SPEC = StripeType(
    name="invoice", list_path="/v1/invoices", rank=rank, mapper=map_invoice,
    sobjects=("Stripe_Invoice__c",), external_id_field="Stripe_Invoice_Id__c", write_rank=30,
    statuses=INVOICE_STATUS, status_ranks=INVOICE_RANK, terminal=frozenset({"paid", "void"}), backfill_order=3,
)
