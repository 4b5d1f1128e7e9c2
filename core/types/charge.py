"""charge -> Stripe_Payment__c (+ Opportunity/Order payment status).

Ownership: the charge owns the payment's amounts and card fields, its status until a dispute decides it (the
dispute's outcome writes it too, ordered by `Status_Version__c`: `payment_status_version`), and the
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
from core.version import PHASE_CHARGE, PHASE_DISPUTED, encode_payment_status_version
from paysync.keys import ref_id

SOBJECT = "Stripe_Payment__c"
EXTERNAL_ID = "Stripe_Charge_Id__c"
STATUS_VERSION = "Status_Version__c"  # the ordering version of Status__c (sinks.status_versions keeps the newest)

CHARGE_RANK: Mapping[str, int] = MappingProxyType({"pending": 0, "failed": 1, "succeeded": 1})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def money_split(charge: Mapping[str, Any]) -> tuple[int, int, int]:
    """(captured, released, really refunded) minor units of a charge snapshot.

    Stripe reports the authorization released by a partial capture inside `amount_refunded` (capture 60 of 100:
    `amount_captured=60`, `amount_refunded=40`, `refunded=false`, public payloads e.g. woocommerce-gateway-stripe#1073),
    and a later real refund adds to it (refund 10 more: `amount_refunded=50`). So: released = amount − captured
    for a captured charge; really refunded = amount_refunded − released. An uncaptured charge whose authorization
    was released (`refunded=true`) released its whole amount and refunded nothing.
    """
    amount = _int(charge.get("amount")) or 0
    refunded_total = _int(charge.get("amount_refunded")) or 0
    captured_flag = charge.get("captured") is True
    captured = _int(charge.get("amount_captured"))
    if captured is None:  # API versions before amount_captured existed: a capture took the whole amount
        captured = amount if captured_flag else 0
    if not captured_flag:
        return 0, (refunded_total if charge.get("refunded") else 0), 0
    released = max(0, amount - captured)
    return captured, released, max(0, refunded_total - released)


def charge_payment_status(charge: Mapping[str, Any]) -> str | None:
    """The payment status of a charge snapshot, first matching rule wins; None for an unknown Stripe status.

    failed -> Failed; uncaptured and refunded (authorization released) -> Canceled; really refunded (refunds,
    not a released authorization: `money_split`) >= captured -> Refunded; really refunded > 0 -> Partially
    Refunded; pending -> Pending; succeeded + captured -> Succeeded; succeeded + uncaptured -> Pending.
    disputed -> Disputed comes right after failed. Stripe keeps `disputed=true` after a won dispute, so the
    charge cannot tell the outcome: a dispute closed in the merchant's favour writes the status again, at a later
    phase of `payment_status_version` (`core.types.dispute`).
    """
    status = charge.get("status")
    if status == "failed":
        return statuses.FAILED
    if charge.get("disputed"):
        return statuses.DISPUTED
    if status not in ("succeeded", "pending"):
        return None
    captured_flag = charge.get("captured") is True
    if charge.get("refunded") and not captured_flag:
        return statuses.CANCELED
    captured, _, refunded = money_split(charge)
    if captured_flag and refunded > 0 and refunded >= captured:
        return statuses.REFUNDED
    if refunded > 0:
        return statuses.PARTIALLY_REFUNDED
    if status == "pending":
        return statuses.PENDING
    return statuses.SUCCEEDED if captured_flag else statuses.PENDING


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


def payment_status_version(obj: Mapping[str, Any]) -> str:
    """The charge's `Status_Version__c`: phase PHASE_DISPUTED once `disputed` (a dispute's outcome outranks
    it), else PHASE_CHARGE; then the charge's `created` and `rank` (its lifecycle only grows)."""
    phase = PHASE_DISPUTED if obj.get("disputed") is True else PHASE_CHARGE
    return encode_payment_status_version(phase, statuses.int_or_zero(obj.get("created")), rank(obj))


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
    """Amount, captured, released (authorization let go, never a refund) and really refunded."""
    amount = require_amount(obj, "amount")
    if obj.get("amount_refunded") is not None:
        require_amount(obj, "amount_refunded")
    captured_amount = obj.get("amount_captured")
    if captured_amount is not None:
        captured_amount = require_amount(obj, "amount_captured")
    elif obj.get("captured") is True:
        captured_amount = amount  # API versions before amount_captured existed
    _, released, refunded = money_split(obj)
    return {
        "Amount__c": money(amount, currency),
        "Amount_Captured__c": money(captured_amount, currency),
        "Amount_Released__c": money(released, currency),
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
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update(amounts)
    fields.update({
        "Currency__c": upper(currency),
        "Status__c": status,
        STATUS_VERSION: payment_status_version(obj),
        "Stripe_Status__c": text(obj.get("status"), 50),
        "Failure_Code__c": text(obj.get("failure_code"), 255),
        "Failure_Message__c": text(obj.get("failure_message"), 255),
        "Card_Brand__c": brand,
        "Card_Last4__c": last4,
        "Description__c": text(obj.get("description"), 255),
        "Stripe_Payment_Intent_Id__c": ref_id(obj.get("payment_intent")),
    })
    if ref_id(obj.get("payment_intent")) is None:
        fields.update(links(obj.get("metadata"), cfg))
    parents = customer_parent(obj.get("customer"), cfg)
    invoice = ref_id(obj.get("invoice"))  # API < 2025-03-31; basil links through invoice_payment
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
