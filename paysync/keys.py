"""Kafka keys for Stripe data, decided once so every producer agrees.

All events of one Stripe object, and of the refunds, disputes and balance transactions of a charge,
share a key (and so a partition), which keeps their order and lets the streams keep per-object state
locally. An object's key never changes over its life.
"""

from __future__ import annotations

from typing import Any

_CHILDREN_OF_CHARGE = frozenset({"refund", "dispute"})


def _ref_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def event_key(object_type: str, obj: dict[str, Any]) -> str:
    """The `stripe.events` key of an event about `obj`: its charge's id for refunds and disputes, else its own id."""
    if object_type in _CHILDREN_OF_CHARGE:
        charge = _ref_id(obj.get("charge"))
        if charge:
            return charge
    object_id = _ref_id(obj.get("id"))
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
        charge = _ref_id(source.get("charge"))
        if source.get("object") in _CHILDREN_OF_CHARGE and charge:
            return charge
    return _ref_id(source) or str(txn["id"])
