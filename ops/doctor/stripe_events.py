"""The Stripe event types paysync needs: every documented event whose `data.object` is a type the registry maps.

The registry (`core.registry.event_types()`) names the object types carried by `stripe.events`; Stripe's "Types of
events" page (docs.stripe.com/api/events/types: "Stripe events use the resource.event naming convention", each
entry saying "data.object is a <type>") and the "Events" section of each resource's API page give the event types
of each. `invoice.upcoming` is left out: its `data.object` is an invoice preview without an id, which paysync
cannot key. `needed_event_types()` fails loudly when the registry gains a type this table does not know yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core import registry

EVENTS_BY_OBJECT: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # docs.stripe.com/api/customers "Events"
    "customer": ("customer.created", "customer.deleted", "customer.updated"),
    # docs.stripe.com/api/payouts "Events"
    "payout": ("payout.canceled", "payout.created", "payout.failed", "payout.paid", "payout.reconciliation_completed",
               "payout.updated"),
    # docs.stripe.com/api/invoices "Events" (and "Status transitions and finalization": the emitted webhooks)
    "invoice": ("invoice.created", "invoice.deleted", "invoice.finalization_failed", "invoice.finalized",
                "invoice.marked_uncollectible", "invoice.overdue", "invoice.paid", "invoice.payment_action_required",
                "invoice.payment_failed", "invoice.payment_succeeded", "invoice.sent", "invoice.updated",
                "invoice.voided"),
    # docs.stripe.com/api/payment_intents "Events"
    "payment_intent": ("payment_intent.amount_capturable_updated", "payment_intent.canceled", "payment_intent.created",
                       "payment_intent.partially_funded", "payment_intent.payment_failed", "payment_intent.processing",
                       "payment_intent.requires_action", "payment_intent.succeeded"),
    # docs.stripe.com/api/charges "Events"
    "charge": ("charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded",
               "charge.succeeded", "charge.updated"),
    # docs.stripe.com/api/refunds "Events"
    "refund": ("charge.refund.updated", "refund.created", "refund.failed", "refund.updated"),
    # docs.stripe.com changelog 2025-05-28.basil "Adds support for partial payments on invoices": "We also introduced
    # the invoice_payment.paid webhook"
    "invoice_payment": ("invoice_payment.paid",),
    # docs.stripe.com/api/disputes "Events"
    "dispute": ("charge.dispute.closed", "charge.dispute.created", "charge.dispute.funds_reinstated",
                "charge.dispute.funds_withdrawn", "charge.dispute.updated"),
})


class UnknownEventObject(LookupError):
    """The registry maps an object type whose Stripe event types this table does not list."""


def needed_event_types() -> tuple[str, ...]:
    """The event types a webhook endpoint must enable for paysync, sorted (from `core.registry`)."""
    needed: set[str] = set()
    for spec in registry.event_types():
        if spec.name not in EVENTS_BY_OBJECT:
            raise UnknownEventObject(f"core.registry maps {spec.name!r}: add its event types to "
                                     "ops/doctor/stripe_events.py (docs.stripe.com/api/events/types)")
        needed.update(EVENTS_BY_OBJECT[spec.name])
    return tuple(sorted(needed))
