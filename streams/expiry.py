"""The expiry sweep: long-reconciled payouts shrink to a closed marker.

Run after a record of a partition is handled, at most once per `stream_sweep_interval_s` per partition,
at most `stream_sweep_batch` keys at a time (a full batch comes back on the next record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.faust_internals import partition_items
from streams.metrics import StreamMetrics
from streams.processor import Processor

TABLE = "payouts"


class Sweeper:
    """Expires entries of the `payouts` table, partition by partition."""

    def __init__(self, tables: Mapping[str, Any], processor: Processor, metrics: StreamMetrics,
                 interval_s: float, batch: int, now_ms: Callable[[], int]) -> None:
        self._table = tables[TABLE]
        self._processor = processor
        self._metrics = metrics
        self._interval_ms = int(interval_s * 1000)
        self._batch = batch
        self._now_ms = now_ms
        self._last_ms: dict[int, int] = {}
        self._sizes: dict[int, int] = {}

    def _doomed(self, partition: int, now: int) -> tuple[list[tuple[Any, Any]], int]:
        """(key, closed marker) of up to `batch` expired entries, and the partition's key count."""
        doomed: list[tuple[Any, Any]] = []
        size = 0
        for key, value in partition_items(self._table, partition):
            size += 1
            if len(doomed) >= self._batch:
                continue
            marker = self._processor.payout_closed(value, now)
            if marker is not None:
                doomed.append((key, marker))
        return doomed, size

    def sweep(self, partition: int) -> None:
        """Expire old entries of one partition when its interval has passed."""
        now = self._now_ms()
        if now - self._last_ms.get(partition, 0) < self._interval_ms:
            return
        doomed, size = self._doomed(partition, now)
        for key, marker in doomed:
            self._table[key] = marker
        if doomed:
            self._metrics.expired.labels(TABLE).inc(len(doomed))
        # full batch: come back on the next record rather than after a whole interval
        self._last_ms[partition] = now if len(doomed) < self._batch else 0
        self._sizes[partition] = size
        self._metrics.table_size.labels(TABLE).set(sum(self._sizes.values()))
