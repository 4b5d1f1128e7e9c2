"""The stream worker's view of the pure core (`core`): the one seam between Kafka plumbing and the mappings.

The processor calls only `Mapper`'s methods, so unit tests can hand it a fake; `RealMapper` is the core with
one `MappingConfig` built by `core.config.mapping_config` from the worker's settings.
"""

from __future__ import annotations

from typing import Any, Protocol

from core import order
from core.common import EventMeta, MappingError
from core.config import MappingConfig, MappingSettings, mapping_config
from core.mapping import SUPPORTED_OBJECT_TYPES, map_object
from core.payout_reconciliation import PayoutMember, reconcile_payout
from core.types.balance_transaction import map_balance_transaction
from core.version import Version


class Mapper(Protocol):
    """What the processor needs from the mapping and order modules."""

    def supports(self, object_type: str) -> bool: ...
    def version_of(self, object_type: str, obj: dict[str, Any], created: int, event_id: str) -> Version: ...
    def is_newer(self, candidate: Version, applied: Version | None) -> bool: ...
    def encode_version(self, version: Version) -> str: ...
    def decode_version(self, text: str) -> Version: ...
    def map_object(self, object_type: str, obj: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]: ...
    def map_balance_transaction(self, record: dict[str, Any]) -> list[dict[str, Any]]: ...
    def reconcile_payout(
        self, payout_id: str, amount: int | None, currency: str | None, members: list[dict[str, Any]],
        expected_count: int | None, meta: dict[str, Any], automatic: bool | None = None,
        reconciliation_status: str | None = None,
    ) -> dict[str, Any]: ...
    def is_mapping_error(self, exc: BaseException) -> bool: ...


class RealMapper:
    """`Mapper` over `core` with the `MappingConfig` of `settings` (the stream worker's settings)."""

    def __init__(self, settings: MappingSettings) -> None:
        self.cfg: MappingConfig = mapping_config(settings)

    def supports(self, object_type: str) -> bool:
        return object_type in SUPPORTED_OBJECT_TYPES

    def version_of(self, object_type: str, obj: dict[str, Any], created: int, event_id: str) -> Version:
        return order.version_of(object_type, obj, created, event_id)

    def is_newer(self, candidate: Version, applied: Version | None) -> bool:
        return order.is_newer(candidate, applied)

    def encode_version(self, version: Version) -> str:
        return order.encode_version(version)

    def decode_version(self, text: str) -> Version:
        return order.decode_version(text)

    def map_object(self, object_type: str, obj: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]:
        return map_object(object_type, obj, EventMeta(**meta), self.cfg)

    def map_balance_transaction(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        return map_balance_transaction(record, self.cfg)

    def reconcile_payout(
        self, payout_id: str, amount: int | None, currency: str | None, members: list[dict[str, Any]],
        expected_count: int | None, meta: dict[str, Any], automatic: bool | None = None,
        reconciliation_status: str | None = None,
    ) -> dict[str, Any]:
        parts = [
            PayoutMember(m["balance_transaction_id"], m["amount"], m["fee"], m["net"], m["currency"])
            for m in members
        ]
        return reconcile_payout(payout_id, amount, currency, parts, expected_count, EventMeta(**meta), self.cfg,
                                automatic, reconciliation_status)

    def is_mapping_error(self, exc: BaseException) -> bool:
        return isinstance(exc, MappingError)
