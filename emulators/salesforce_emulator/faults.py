"""Fault knobs, pacing and API limits: 503s, `UNABLE_TO_LOCK_ROW`, the latency model, Bulk pace, session TTL, the
daily API request budget, and the insert gate that makes write races reproducible.

Every API call is counted by kind (auth, rest, composite, collections, bulk, query, limits); all but auth spend the
daily budget, as on Salesforce. Knobs change at run time through `POST /_emulator/faults`.

Latency model (for benchmarks): each REST/Bulk HTTP request waits `latency_ms` plus `latency_per_record_ms` for every
record it saved (single, Collections and Composite DML; Bulk jobs are paced by `bulk_records_per_s` instead).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

KINDS = ("auth", "rest", "composite", "collections", "bulk", "query", "limits")
_INTS = ("latency_ms", "latency_per_record_ms", "daily_limit", "insert_window_ms", "bulk_records_per_s")
T = TypeVar("T")


@dataclass
class Knobs:
    """The adjustable behaviour; rates are probabilities in [0, 1].

    `lock_wrap_rate`: share of injected lock errors that arrive wrapped in `CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY`
    (as when a trigger's DML hits the lock). `insert_window_ms`: time an insert spends between its duplicate check
    and its write with the store unlocked (0 = none), so concurrent writers race as on Salesforce.
    `bulk_queue_s` / `bulk_records_per_s`: how long a closed Bulk 2.0 job stays `UploadComplete`, and its pace.
    """

    error_503_rate: float = 0.0
    lock_rate: float = 0.0
    lock_wrap_rate: float = 0.0
    latency_ms: int = 0
    latency_per_record_ms: int = 0
    session_ttl_s: float = 7200.0
    daily_limit: int = 100_000
    insert_window_ms: int = 0
    bulk_queue_s: float = 3.0
    bulk_records_per_s: int = 3000

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes` (unknown keys → ValueError; rates outside [0, 1] → ValueError)."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        for name, value in changes.items():
            number: float = int(value) if name in _INTS else float(value)
            if name.endswith("_rate") and not 0.0 <= number <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
            if number < 0:
                raise ValueError(f"{name} must not be negative")
            if name == "bulk_records_per_s" and number < 1:
                raise ValueError("bulk_records_per_s must be at least 1")
            setattr(self, name, number)


class InsertGate:
    """Holds the next insert of one external id value between its check and its write until released (tests).

    `arm(value)` catches the next insert whose external id equals `value`; `waiting` tells the test it is held;
    `release()` lets it write. The hold releases the store lock (a `Condition` on it), so others can write meanwhile.
    """

    def __init__(self) -> None:
        self.value: str | None = None
        self.waiting = 0
        self.in_window = 0  # inserts now inside their `insert_window_ms`
        self.released = threading.Event()

    def arm(self, value: str) -> None:
        self.value, self.waiting = value, 0
        self.released.clear()

    def catches(self, value: Any) -> bool:
        if self.value is not None and value is not None and str(value) == self.value:
            self.value = None
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {"armed": self.value, "waiting": self.waiting, "released": self.released.is_set(),
                "in_window": self.in_window}


class Faults:
    """Knobs plus the counters; thread-safe."""

    def __init__(self, knobs: Knobs, seed: int | None = None) -> None:
        self.knobs = knobs
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {k: 0 for k in KINDS}
        self.api_used = 0
        self.gate = InsertGate()

    def count(self, kind: str) -> bool:
        """Count one call of `kind`; False when the daily budget is spent (the call must be refused)."""
        with self._lock:
            self.calls[kind] = self.calls.get(kind, 0) + 1
            if kind == "auth":
                return True
            if self.api_used >= self.knobs.daily_limit:
                return False
            self.api_used += 1
            return True

    def reset_limits(self) -> None:
        with self._lock:
            self.api_used = 0

    def limit_info(self) -> str:
        return f"api-usage={self.api_used}/{self.knobs.daily_limit}"

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def roll_503(self) -> bool:
        return self._roll(self.knobs.error_503_rate)

    def roll_lock(self) -> bool:
        return self._roll(self.knobs.lock_rate)

    def roll_lock_wrap(self) -> bool:
        return self._roll(self.knobs.lock_wrap_rate)

    def shuffled(self, items: list[T]) -> list[T]:
        """`items` in a seeded random order (same seed, same order)."""
        out = list(items)
        with self._lock:
            self._rng.shuffle(out)
        return out

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls), "api_used": self.api_used, "knobs": asdict(self.knobs),
                    "gate": self.gate.state()}
