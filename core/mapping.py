"""The mapping entry points: Stripe object snapshots -> `paysync.SalesforceUpsert` dicts.

`map_object` dispatches through the registry to the type's own module (`core.types`); balance transactions
and payout reconciliation have their own entry points. Nothing here touches Kafka, Faust or HTTP.
"""

from __future__ import annotations

from typing import Any

from core import registry
from core.common import EventMeta, MappingError
from core.config import MappingConfig

SUPPORTED_OBJECT_TYPES: frozenset[str] = frozenset(spec.name for spec in registry.event_types())


def map_object(object_type: str, obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """SalesforceUpsert dicts (schemas/salesforce_upsert.avsc) for one Stripe object snapshot.

    origin_* and ingested_at are left None (the app fills them). [] when nothing is synced for it;
    MappingError when it is malformed (or of an unsupported type: UNSUPPORTED_TYPE).
    """
    spec = registry.find(object_type)
    if spec is None or spec.mapper is None:
        raise MappingError("UNSUPPORTED_TYPE", f"no mapping for object type {object_type!r}")
    return spec.mapper(obj, meta, cfg)
