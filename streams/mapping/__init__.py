"""The streams' pure mapping core: Stripe object snapshots -> `paysync.SalesforceUpsert` dicts.

`map_object` dispatches on the Stripe object type to one module per type; balance transactions and
payout reconciliation have their own entry points. Nothing here touches Kafka, Faust or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from streams.mapping.balance_transaction import map_balance_transaction
from streams.mapping.common import EventMeta, MappingConfig, MappingError
from streams.mapping.customer import map_customer
from streams.mapping.dispute import map_dispute
from streams.mapping.invoice import map_invoice
from streams.mapping.payment import map_charge, map_payment_intent
from streams.mapping.payout import map_payout
from streams.mapping.payout_reconciliation import PayoutMember, reconcile_payout
from streams.mapping.refund import map_refund

Mapper = Callable[[dict[str, Any], EventMeta, MappingConfig], list[dict[str, Any]]]

MAPPERS: Mapping[str, Mapper] = MappingProxyType({
    "customer": map_customer,
    "charge": map_charge,
    "payment_intent": map_payment_intent,
    "refund": map_refund,
    "dispute": map_dispute,
    "invoice": map_invoice,
    "payout": map_payout,
})

SUPPORTED_OBJECT_TYPES: frozenset[str] = frozenset(MAPPERS)


def map_object(object_type: str, obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """SalesforceUpsert dicts (schemas/salesforce_upsert.avsc) for one Stripe object snapshot.

    origin_* and ingested_at are left None (the app fills them). [] when nothing is synced for it;
    MappingError when it is malformed (or of an unsupported type: UNSUPPORTED_TYPE).
    """
    mapper = MAPPERS.get(object_type)
    if mapper is None:
        raise MappingError("UNSUPPORTED_TYPE", f"no mapping for object type {object_type!r}")
    return mapper(obj, meta, cfg)


__all__ = [
    "EventMeta",
    "MAPPERS",
    "MappingConfig",
    "MappingError",
    "PayoutMember",
    "SUPPORTED_OBJECT_TYPES",
    "map_balance_transaction",
    "map_object",
    "reconcile_payout",
]
