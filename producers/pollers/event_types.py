"""The event types the events pollers ask for (`types[]`): only those paysync maps (issue 15 point 5).

'List all events', `types`: "An array of up to 20 strings containing specific event names. The list will be
filtered to include only events with a matching event property. You may pass either `type` or `types`, but
not both." Wildcards belong to `type` only, so the names are spelled out here, per Stripe object type, from
the `enabled_events` enum of the API spec (stripe-mock's `spec3.json`, 2026-08-26.dahlia). The object types
come from `core.registry.event_types()`: a type added to the registry without its event names here fails
`tests/producers/test_poller_horizon.py` (`mapped_event_types` raises KeyError). More than 20 names are listed
in groups of 20 (one list call each).
"""

from __future__ import annotations

from core import registry

MAX_TYPES_PER_CALL = 20

# Stripe object type -> the events whose `data.object` is that object. Left out: reminders that change nothing
# on the invoice they carry (`invoice.upcoming` has no id; `invoice.sent`, `.overdue`, `.will_be_due`).
EVENTS_BY_OBJECT: dict[str, tuple[str, ...]] = {
    "customer": ("customer.created", "customer.updated", "customer.deleted"),
    "payout": ("payout.created", "payout.updated", "payout.paid", "payout.failed", "payout.canceled",
               "payout.reconciliation_completed"),
    "invoice": ("invoice.created", "invoice.deleted", "invoice.finalization_failed", "invoice.finalized",
                "invoice.marked_uncollectible", "invoice.overpaid", "invoice.paid",
                "invoice.payment_action_required", "invoice.payment_attempt_required", "invoice.payment_failed",
                "invoice.payment_succeeded", "invoice.updated", "invoice.voided"),
    "payment_intent": ("payment_intent.amount_capturable_updated", "payment_intent.canceled",
                       "payment_intent.created", "payment_intent.partially_funded", "payment_intent.payment_failed",
                       "payment_intent.processing", "payment_intent.requires_action", "payment_intent.succeeded"),
    "charge": ("charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded",
               "charge.succeeded", "charge.updated"),
    "invoice_payment": ("invoice_payment.paid",),
    "refund": ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated"),
    "dispute": ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
                "charge.dispute.funds_reinstated", "charge.dispute.funds_withdrawn"),
}
# Connect: an account connecting to or leaving the platform (`producers.pollers.accounts`); platform only.
ACCOUNT_EVENTS: tuple[str, ...] = ("account.application.authorized", "account.application.deauthorized")


def mapped_event_types() -> tuple[str, ...]:
    """Every event name whose object paysync maps, in the registry's order (KeyError: a type without names)."""
    return tuple(name for spec in registry.event_types() for name in EVENTS_BY_OBJECT[spec.name])


def type_groups(platform: bool) -> tuple[tuple[str, ...], ...]:
    """The `types[]` of each list call: the mapped names (+ the account events on the platform), 20 a call."""
    names = mapped_event_types() + (ACCOUNT_EVENTS if platform else ())
    return tuple(names[i:i + MAX_TYPES_PER_CALL] for i in range(0, len(names), MAX_TYPES_PER_CALL))
