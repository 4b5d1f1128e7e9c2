"""What handling one input record leads to (`Step`), and the one map-or-dead-letter path of every input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streams.metrics import StreamMetrics
from streams.outputs import Origin, Output, Target, dead_letter_output
from streams.ports import Mapper

log = logging.getLogger("paysync.streams")

# What a mapping bug raises: dead-lettered as `internal` (with its type name) rather than stopping the worker.
BUG_ERRORS: tuple[type[Exception], ...] = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError)


@dataclass
class Step:
    """What one input record leads to: records to produce, then table writes (`None` value = delete)."""

    outputs: list[Output] = field(default_factory=list)
    writes: list[tuple[str, str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Input:
    """One input record as the dead-letter topic keeps it: where it came from and its raw bytes."""

    name: str  # events | balance_transactions | payouts
    origin: Origin
    key: bytes | None
    value: bytes | None


class Recorder:
    """Dead letters and upsert counts, with their metrics and log lines."""

    def __init__(self, metrics: StreamMetrics, mapper: Mapper) -> None:
        self.metrics = metrics
        self.mapper = mapper

    def dead(self, record: Input, kind: str, code: str, message: str, event_id: str | None = None,
             object_id: str | None = None) -> Step:
        """A step that only dead-letters `record` with its reason."""
        origin = record.origin
        self.metrics.child(self.metrics.dead_lettered, record.name, code).inc()
        log.warning("dead-lettered", extra={"topic": origin.topic, "partition": origin.partition,
                                            "offset": origin.offset, "event_id": event_id, "code": code})
        return Step([dead_letter_output(origin, record.key, record.value, kind, code, message, event_id, object_id)])

    def map_or_dead(
        self, record: Input, mapping: Callable[[], list[dict[str, Any]]], event_id: str | None = None,
        object_id: str | None = None, bug_errors: tuple[type[Exception], ...] = BUG_ERRORS,
    ) -> list[dict[str, Any]] | Step:
        """The upserts of `mapping()`, or the dead-letter step of `record` when it fails.

        A mapping error (the input is malformed) is dead-lettered as `invalid` with its code; one of `bug_errors`
        as `internal` (logged with its traceback); anything else propagates.
        """
        try:
            return mapping()
        except Exception as exc:  # noqa: BLE001 - sorted just below
            if self.mapper.is_mapping_error(exc):
                code = str(getattr(exc, "code", "") or "MAPPING_ERROR")
                return self.dead(record, "invalid", code, str(exc), event_id, object_id)
            if isinstance(exc, bug_errors):
                log.exception("mapping failed unexpectedly", extra={"event_id": event_id, "object_id": object_id})
                return self.dead(record, "internal", type(exc).__name__, str(exc), event_id, object_id)
            raise

    def count_upserts(self, outputs: list[Output], input_name: str) -> None:
        """Count the upserts of a step by object, and the input record as applied when it produced any."""
        produced = False
        for out in outputs:
            if out.target is Target.UPSERT:
                produced = True
                self.metrics.child(self.metrics.upserts, str(out.value.get("sobject"))).inc()
        if produced:
            self.metrics.child(self.metrics.applied, input_name).inc()
