"""The registry: every Stripe object type paysync syncs, one `StripeType` (`core.spec`) each.

`TYPES` is in the field-ownership order: `paysync reconcile` merges the mappings of the types in this order
(snapshots first, balance transactions after them), as the sink merges partial upserts in offset order.
Adding a type: one module in `core.types` with its `SPEC`, and one line here (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from core.spec import StripeType
from core.types import (
    balance_transaction, charge, customer, dispute, invoice, invoice_payment, payment_intent, payout, refund,
)

__all__ = ["BY_NAME", "LINKED_OBJECTS", "TYPES", "StripeType", "backfill_types", "children_of_charge", "event_types",
           "external_id_fields", "find", "write_order"]

TYPES: tuple[StripeType, ...] = (
    customer.SPEC,
    payout.SPEC,
    invoice.SPEC,
    payment_intent.SPEC,
    charge.SPEC,
    invoice_payment.SPEC,
    refund.SPEC,
    dispute.SPEC,
    balance_transaction.SPEC,
)

BY_NAME: Mapping[str, StripeType] = MappingProxyType({spec.name: spec for spec in TYPES})

# Salesforce objects the mappings write by `Id` (a payment's status on its Opportunity/Order), after every
# Stripe object: they are looked up, never created, and point at nothing the sink writes.
LINKED_OBJECTS: tuple[str, ...] = ("Opportunity", "Order")


def find(name: str) -> StripeType | None:
    """The spec of Stripe type `name`, None when paysync does not sync it."""
    return BY_NAME.get(name)


def event_types() -> tuple[StripeType, ...]:
    """The types carried by `stripe.events` (they have a snapshot mapper), in ownership order."""
    return tuple(spec for spec in TYPES if spec.mapper is not None)


def children_of_charge() -> frozenset[str]:
    """The types whose Kafka key is their charge's id (`paysync.keys.CHILDREN_OF_CHARGE` must equal it)."""
    return frozenset(spec.name for spec in TYPES if spec.child_of_charge)


def backfill_types() -> tuple[StripeType, ...]:
    """The types `paysync backfill` lists as snapshots, in backfill order."""
    listed = [spec for spec in TYPES if spec.backfill_order is not None]
    return tuple(sorted(listed, key=lambda spec: spec.backfill_order or 0))


def external_id_fields() -> Mapping[str, str]:
    """Salesforce object -> its external id field, for every object a Stripe type is written to."""
    return MappingProxyType({sobject: spec.external_id_field for spec in TYPES for sobject in spec.sobjects})


def write_order() -> tuple[str, ...]:
    """Salesforce objects in the order the sink writes them: parents first (by `write_rank`), then LINKED_OBJECTS."""
    ordered: list[str] = []
    for spec in sorted(TYPES, key=lambda s: s.write_rank):
        ordered.extend(s for s in spec.sobjects if s not in ordered)
    return (*ordered, *LINKED_OBJECTS)
