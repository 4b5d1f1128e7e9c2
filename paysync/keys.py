"""Kafka keys for Stripe data, decided once so every producer agrees.

All events of one Stripe object, and of the refunds, disputes and balance transactions of a charge,
share a key (and so a partition), which keeps their order and lets the streams keep per-object state
locally. An object's key never changes over its life.
"""

from __future__ import annotations

from typing import Any

# The types whose events are keyed by their charge. The shared package cannot read `core.registry`
# (it imports nothing of paysync's own packages), so tests/core/test_registry.py checks this set
# against the registry's `child_of_charge` flags.
CHILDREN_OF_CHARGE = frozenset({"refund", "dispute"})


def ref_id(value: Any) -> str | None:
    """An id from a Stripe reference that is either an id string or an expanded object; None when absent or empty."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        inner = value.get("id")
        if isinstance(inner, str) and inner:
            return inner
    return None


def event_key(object_type: str, obj: dict[str, Any]) -> str:
    """The `stripe.events` key of an event about `obj`: its charge's id for refunds and disputes, else its own id."""
    if object_type in CHILDREN_OF_CHARGE:
        charge = ref_id(obj.get("charge"))
        if charge:
            return charge
    object_id = ref_id(obj.get("id"))
    if object_id is None:
        raise ValueError(f"{object_type} object has no id")
    return object_id


def balance_transaction_key(txn: dict[str, Any]) -> str:
    """The `stripe.balance_transactions` key: the source's charge for refunds/disputes when known, else the source id, else the id.

    The poller resolves a refund's or dispute's charge when it can (expanded `source`), so the
    transaction meets that charge's events in the same partition.
    """
    source = txn.get("source")
    if isinstance(source, dict):
        charge = ref_id(source.get("charge"))
        if source.get("object") in CHILDREN_OF_CHARGE and charge:
            return charge
    return ref_id(source) or str(txn["id"])
