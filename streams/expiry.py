"""The expiry sweep: old dedupe entries are deleted, long-reconciled payouts shrink to a closed marker.

Run after a record of a partition is handled, at most once per `stream_sweep_interval_s` per (table, partition),
at most `stream_sweep_batch` keys at a time (a full batch comes back on the next record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from streams.faust_internals import partition_items
from streams.metrics import StreamMetrics
from streams.processor import Processor


class Sweeper:
    """Expires entries of the `dedupe` and `payouts` tables, partition by partition."""

    def __init__(self, tables: Mapping[str, Any], processor: Processor, metrics: StreamMetrics,
                 interval_s: float, batch: int, now_ms: Callable[[], int]) -> None:
        self._tables = tables
        self._processor = processor
        self._metrics = metrics
        self._interval_ms = int(interval_s * 1000)
        self._batch = batch
        self._now_ms = now_ms
        self._last_ms: dict[tuple[str, int], int] = {}
        self._sizes: dict[tuple[str, int], int] = {}

    def _doomed(self, name: str, partition: int, now: int) -> tuple[list[tuple[Any, Any]], int]:
        """(key, closed marker or None = delete) of up to `batch` expired entries, and the partition's key count."""
        doomed: list[tuple[Any, Any]] = []
        size = 0
        for key, value in partition_items(self._tables[name], partition):
            size += 1
            if len(doomed) >= self._batch:
                continue
            if name == "dedupe" and self._processor.dedupe_expired(value, now):
                doomed.append((key, None))
            elif name == "payouts":
                marker = self._processor.payout_closed(value, now)
                if marker is not None:
                    doomed.append((key, marker))
        return doomed, size

    def sweep(self, name: str, partition: int) -> None:
        """Expire old entries of one partition of table `name` when its interval has passed."""
        now = self._now_ms()
        slot = (name, partition)
        if now - self._last_ms.get(slot, 0) < self._interval_ms:
            return
        table = self._tables[name]
        doomed, size = self._doomed(name, partition, now)
        for key, marker in doomed:
            if marker is None:
                table.pop(key, None)
            else:
                table[key] = marker
        if doomed:
            self._metrics.expired.labels(name).inc(len(doomed))
        # full batch: come back on the next record rather than after a whole interval
        self._last_ms[slot] = now if len(doomed) < self._batch else 0
        self._sizes[slot] = size - sum(1 for _, m in doomed if m is None)
        self._metrics.table_size.labels(name).set(sum(v for (n, _), v in self._sizes.items() if n == name))
