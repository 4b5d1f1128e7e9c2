"""Pending records, coalesced by `<SObject>:<external id>`, flushed when large or old enough (or at once when the
loop is idle: `sinks.flush_policy`).

Bounded by count, bytes and age. A record that must be retried is put back with a `not_before`
time; it merges with anything newer for the same key that arrived meanwhile (older first).
"""

from __future__ import annotations

import time

from sinks.flush_policy import Readiness
from sinks.records import PendingRecord


class Batcher:
    """Not thread-safe: owned by the consumer loop."""

    def __init__(self, max_records: int, max_bytes: int, max_age_s: float) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._pending: dict[str, PendingRecord] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, record: PendingRecord) -> None:
        """A new message's record: merged into a pending one of the same key (it is later), else queued."""
        existing = self._pending.get(record.key)
        if existing is None:
            self._pending[record.key] = record
        else:
            existing.merge(record)
        self._bytes += record.size

    def requeue(self, record: PendingRecord) -> None:
        """Put back a record that was taken and not written; newer pending data of the key merges into it.

        Its age restarts, so retries travel with the next regular batch instead of forcing small ones.
        """
        record.first_seen = time.monotonic()
        newer = self._pending.pop(record.key, None)
        if newer is not None:
            self._bytes -= newer.size
            record.merge(newer)
            record.not_before = min(record.not_before, newer.not_before)
        self._pending[record.key] = record
        self._bytes += record.size

    def _ready_at(self, record: PendingRecord) -> float:
        """When `record` forces a flush by age: `max_age_s` after it arrived or after its retry time came.

        A retry is written by any flush once its time has come; it forces one of its own only after waiting a
        whole `max_age_s` more, so records retried at scattered (jittered) times ride the regular batches
        instead of each costing a small batch of its own.
        """
        return max(record.first_seen, record.not_before) + self.max_age_s

    def readiness(self, now: float | None = None) -> Readiness:
        """The ready records (retry time come): how many, how many never tried, and whether they force a flush."""
        now = time.monotonic() if now is None else now
        ready = [r for r in self._pending.values() if r.not_before <= now]
        full = len(ready) >= self.max_records or sum(r.size for r in ready) >= self.max_bytes
        return Readiness(ready=len(ready), fresh=sum(1 for r in ready if r.not_before == 0.0), full=bool(ready) and full,
                         aged=any(self._ready_at(r) <= now for r in ready))

    def due(self, now: float | None = None) -> bool:
        """True when a flush should happen now: enough records or bytes, or one old enough."""
        r = self.readiness(now)
        return r.full or r.aged

    def next_due_in(self, now: float | None = None) -> float | None:
        """Seconds until `due()` becomes true by age alone (None when nothing is pending)."""
        now = time.monotonic() if now is None else now
        if not self._pending:
            return None
        return max(0.0, min(self._ready_at(r) for r in self._pending.values()) - now)

    def take_ready(self, now: float | None = None) -> list[PendingRecord]:
        """Remove and return every record whose retry time has come."""
        now = time.monotonic() if now is None else now
        out = [r for r in self._pending.values() if r.not_before <= now]
        for r in out:
            del self._pending[r.key]
            self._bytes -= r.size
        return out

    def drop_partitions(self, partitions: set[tuple[str, int]]) -> list[PendingRecord]:
        """Forget records whose messages come from `partitions` (revoked: another member replays them)."""
        dropped = [r for r in self._pending.values() if any((o.topic, o.partition) in partitions for o in r.origins)]
        for r in dropped:
            del self._pending[r.key]
            self._bytes -= r.size
        return dropped
