"""The stream worker's own Prometheus metrics (`paysync_stream_*`), created once per registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class StreamMetrics:
    """Counters by input (`events`, `balance_transactions`, `payouts`) and reason; table sizes; latency."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._counters(registry)
        self._watch_and_latency(registry)

    def _counters(self, registry: CollectorRegistry) -> None:
        self.processed = Counter(
            "paysync_stream_processed_total", "Input records handled (any outcome)", ["input"], registry=registry
        )
        self.applied = Counter(
            "paysync_stream_applied_total", "Input records that produced upserts", ["input"], registry=registry
        )
        self.duplicates = Counter(
            "paysync_stream_duplicates_dropped_total", "Records dropped as already seen", ["input"], registry=registry
        )
        self.stale = Counter(
            "paysync_stream_stale_dropped_total", "Records older than the state already applied", ["input"],
            registry=registry,
        )
        self.skipped = Counter(
            "paysync_stream_skipped_total", "Records skipped (unknown event type, thin event …)", ["input", "reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "paysync_stream_dead_lettered_total", "Records sent to the dead-letter topic", ["input", "code"],
            registry=registry,
        )
        self.upserts = Counter(
            "paysync_stream_upserts_total", "Upserts produced to salesforce.upserts", ["sobject"], registry=registry
        )
        self.reconciliations = Counter(
            "paysync_stream_payout_reconciliations_total", "Payout reconciliations emitted", ["status"],
            registry=registry,
        )
        self.expired = Counter(
            "paysync_stream_expired_total", "Table entries removed by the expiry sweep", ["table"], registry=registry
        )

    def _watch_and_latency(self, registry: CollectorRegistry) -> None:
        self.table_size = Gauge(
            "paysync_stream_table_keys", "Keys in a table on this worker (estimated at sweeps)", ["table"],
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "paysync_stream_assigned_partitions", "Input partitions assigned to this worker", ["input"],
            registry=registry,
        )
        self.waiting_seconds = Gauge(
            "paysync_stream_waiting_seconds",
            "Longest time an input partition has had records waiting with no progress (exit at the stall timeout)",
            ["input"], registry=registry,
        )
        self.refetched = Counter(
            "paysync_stream_refetched_total",
            "Input records the consumer skipped and the worker read from the broker itself (streams.continuity)",
            ["input"], registry=registry,
        )
        self.rewinds = Counter(
            "paysync_stream_rewinds_total",
            "Consumer seeks back to records past the last one handled that waited with nothing handled",
            ["input"], registry=registry,
        )
        self.processing_seconds = Histogram(
            "paysync_stream_processing_seconds", "Time to handle one input record (the mean over its batch)",
            ["input"], registry=registry, buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.ingest_lag_seconds = Histogram(
            "paysync_stream_ingest_lag_seconds", "From entering paysync (received_at) to handled here", ["input"],
            registry=registry, buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once per label set (the per-record hot path)."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
