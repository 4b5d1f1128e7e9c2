"""Fault knobs and API limits: 503s, `UNABLE_TO_LOCK_ROW`, latency, session TTL, the daily API request budget.

Every API call is counted by kind (auth, rest, composite, collections, bulk, query, limits); all but auth spend the daily
budget, as on Salesforce. Knobs change at run time through `POST /_emulator/faults`.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

KINDS = ("auth", "rest", "composite", "collections", "bulk", "query", "limits")


@dataclass
class Knobs:
    """The adjustable behaviour; rates are probabilities in [0, 1]."""

    error_503_rate: float = 0.0
    lock_rate: float = 0.0
    latency_ms: int = 0
    session_ttl_s: float = 7200.0
    daily_limit: int = 100_000

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes` (unknown keys → ValueError; rates outside [0, 1] → ValueError)."""
        names = {f.name: f.type for f in fields(self)}
        unknown = set(changes) - set(names)
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        for name, value in changes.items():
            cast = int if name in ("latency_ms", "daily_limit") else float
            number = cast(value)
            if name.endswith("_rate") and not 0.0 <= number <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
            if number < 0:
                raise ValueError(f"{name} must not be negative")
            setattr(self, name, number)


class Faults:
    """Knobs plus the counters; thread-safe."""

    def __init__(self, knobs: Knobs, seed: int | None = None) -> None:
        self.knobs = knobs
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {k: 0 for k in KINDS}
        self.api_used = 0

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

    def roll_503(self) -> bool:
        with self._lock:
            return self.knobs.error_503_rate > 0 and self._rng.random() < self.knobs.error_503_rate

    def roll_lock(self) -> bool:
        with self._lock:
            return self.knobs.lock_rate > 0 and self._rng.random() < self.knobs.lock_rate

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls), "api_used": self.api_used, "knobs": asdict(self.knobs)}
