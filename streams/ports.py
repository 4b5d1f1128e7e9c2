"""The stream worker's view of the pure mapping and ordering code (`streams.mapping`, `streams.order`).

`Mapper` is the one seam between Kafka plumbing and the pure functions: the worker calls only these
methods, so unit tests can hand the processor a fake and the real modules are imported lazily.
"""

from __future__ import annotations

from typing import Any, Protocol

from streams.settings import StreamSettings


class Mapper(Protocol):
    """What the processor needs from the mapping and order modules."""

    def supports(self, object_type: str) -> bool: ...
    def version_of(self, object_type: str, obj: dict[str, Any], created: int, event_id: str) -> Any: ...
    def is_newer(self, candidate: Any, applied: Any | None) -> bool: ...
    def encode_version(self, version: Any) -> str: ...
    def decode_version(self, text: str) -> Any: ...
    def map_object(self, object_type: str, obj: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]: ...
    def map_balance_transaction(self, record: dict[str, Any]) -> list[dict[str, Any]]: ...
    def reconcile_payout(
        self, payout_id: str, amount: int | None, currency: str | None, members: list[dict[str, Any]],
        expected_count: int | None, meta: dict[str, Any],
    ) -> dict[str, Any]: ...
    def is_mapping_error(self, exc: BaseException) -> bool: ...


class RealMapper:
    """`Mapper` over `streams.mapping` and `streams.order` with one `MappingConfig` built from settings."""

    def __init__(self, settings: StreamSettings) -> None:
        from streams import mapping, order

        self._m = mapping
        self._o = order
        overrides: dict[str, Any] = {
            "customer_target": settings.mapping_customer_target,
            "legal_entities": dict(settings.mapping_legal_entities),
            "multi_currency": settings.mapping_multi_currency,
        }
        if settings.mapping_opportunity_metadata_keys is not None:
            overrides["opportunity_metadata_keys"] = tuple(settings.mapping_opportunity_metadata_keys)
        if settings.mapping_order_metadata_keys is not None:
            overrides["order_metadata_keys"] = tuple(settings.mapping_order_metadata_keys)
        self.cfg = mapping.MappingConfig(**overrides)

    def supports(self, object_type: str) -> bool:
        return object_type in self._m.SUPPORTED_OBJECT_TYPES

    def version_of(self, object_type: str, obj: dict[str, Any], created: int, event_id: str) -> Any:
        return self._o.version_of(object_type, obj, created, event_id)

    def is_newer(self, candidate: Any, applied: Any | None) -> bool:
        return bool(self._o.is_newer(candidate, applied))

    def encode_version(self, version: Any) -> str:
        return str(self._o.encode_version(version))

    def decode_version(self, text: str) -> Any:
        return self._o.decode_version(text)

    def _meta(self, meta: dict[str, Any]) -> Any:
        return self._m.EventMeta(**meta)

    def map_object(self, object_type: str, obj: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._m.map_object(object_type, obj, self._meta(meta), self.cfg))

    def map_balance_transaction(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._m.map_balance_transaction(record, self.cfg))

    def reconcile_payout(
        self, payout_id: str, amount: int | None, currency: str | None, members: list[dict[str, Any]],
        expected_count: int | None, meta: dict[str, Any],
    ) -> dict[str, Any]:
        parts = [
            self._m.PayoutMember(m["balance_transaction_id"], m["amount"], m["fee"], m["net"], m["currency"])
            for m in members
        ]
        return dict(self._m.reconcile_payout(payout_id, amount, currency, parts, expected_count,
                                             self._meta(meta), self.cfg))

    def is_mapping_error(self, exc: BaseException) -> bool:
        return isinstance(exc, self._m.MappingError)
