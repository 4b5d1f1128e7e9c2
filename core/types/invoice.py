"""invoice -> Stripe_Invoice__c by Stripe_Invoice_Id__c (+ Opportunity/Order payment status from its metadata)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    OPPORTUNITY_PREFIX, ORDER_PREFIX, EventMeta, FieldValue, check_object, common_fields,
    customer_parent, datetime_str, money, optional_amount, payment_status_upserts, require_currency,
    require_id, require_status, salesforce_id, text, upper, upsert,
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
    """Status, then amount paid, then payment attempts."""
    return (
        statuses.status_rank(INVOICE_RANK, obj),
        statuses.int_or_zero(obj.get("amount_paid")),
        statuses.int_or_zero(obj.get("attempt_count")),
    )


def _subscription(obj: dict[str, Any]) -> str | None:
    """`subscription` (API < 2025-03-31) or `parent.subscription_details.subscription` (basil and later)."""
    sub = ref_id(obj.get("subscription"))
    if sub:
        return sub
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    return ref_id(details.get("subscription")) if isinstance(details, dict) else None


def map_invoice(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Invoice__c upsert, then Opportunity/Order status upserts for valid ids in its metadata."""
    obj = check_object("invoice", obj)
    invoice_id = require_id(obj)
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
    out.extend(payment_status_upserts(metadata, INVOICE_PAYMENT_STATUS[obj["status"]], meta, cfg))
    return out


SPEC = StripeType(
    name="invoice", list_path="/v1/invoices", rank=rank, mapper=map_invoice,
    sobjects=("Stripe_Invoice__c",), external_id_field="Stripe_Invoice_Id__c", write_rank=30,
    statuses=INVOICE_STATUS, status_ranks=INVOICE_RANK, terminal=frozenset({"paid", "void"}), backfill_order=3,
)
