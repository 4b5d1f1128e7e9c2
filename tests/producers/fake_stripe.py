"""An in-memory Stripe list API behind the production `StripeApi` (only `get_json` is replaced), on a clock the
test moves: entries become visible at `visible_at` (late visibility), lists are sorted newest first by
`created`, `starting_after`/`ending_before`/`limit`/`created[gte]`/`types` behave as Stripe documents them.
Plus a fake publisher and cursor store, so the pollers run without Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from paysync.outcomes import Outcome
from producers.stripe_api import StripeApi, StripeApiError, outcome_for


@dataclass
class Entry:
    obj: dict[str, Any]
    visible_at: float
    seq: int


@dataclass
class FakeStripe(StripeApi):
    """`add(kind, obj, visible_at)`; `now` is the simulated time; `fail_calls` = call numbers answered 500."""

    now: float = 0.0
    entries: dict[str, list[Entry]] = field(default_factory=dict)
    fail_calls: set[int] = field(default_factory=set)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _sorted: dict[str, tuple[list[Entry], dict[str, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        StripeApi.__init__(self, "sk_test_fake", "http://127.0.0.1:9", rate_per_s=1e9, endpoint_rate_per_s=1e9,
                           max_attempts=1, registry=CollectorRegistry(), sleep=lambda _s: None)

    def add(self, path: str, obj: dict[str, Any], visible_at: float) -> None:
        rows = self.entries.setdefault(path, [])
        rows.append(Entry(obj, visible_at, len(rows)))
        self._sorted.pop(path, None)

    def _order(self, path: str) -> tuple[list[Entry], dict[str, int]]:
        """Every entry newest first (by `created`, then insertion) and its position by id; cached."""
        if path not in self._sorted:
            rows = sorted(self.entries.get(path, []), key=lambda e: (e.obj["created"], e.seq), reverse=True)
            self._sorted[path] = (rows, {e.obj["id"]: i for i, e in enumerate(rows)})
        return self._sorted[path]

    def _match(self, entry: Entry, params: dict[str, Any]) -> bool:
        gte = (params.get("created") or {}).get("gte")
        types = params.get("types")
        return (entry.visible_at <= self.now and (gte is None or entry.obj["created"] >= gte)
                and (not types or entry.obj.get("type") in types))

    def _scan(self, rows: list[Entry], positions: range, params: dict[str, Any], limit: int) -> tuple[list[Entry], bool]:
        chosen: list[Entry] = []
        for i in positions:
            if self._match(rows[i], params):
                if len(chosen) == limit:
                    return chosen, True
                chosen.append(rows[i])
        return chosen, False

    def get_json(self, path: str, params: dict[str, Any], account: str | None = None,
                 endpoint: str | None = None) -> dict[str, Any]:
        self.calls_made += 1
        self.requests.append((path, {k: v for k, v in params.items() if k in ("types", "created", "limit")}))
        if self.calls_made in self.fail_calls:
            raise StripeApiError(path, 500, "req_fake", outcome_for(500), "injected")
        rows, index = self._order(path)
        limit = int(params.get("limit") or 10)
        after, before = params.get("starting_after"), params.get("ending_before")
        for cursor in (after, before):
            if cursor is not None and (cursor not in index or rows[index[cursor]].visible_at > self.now):
                raise StripeApiError(path, 404, "req_fake", Outcome.SKIP, f"No such object: {cursor}")
        if before is not None:
            chosen, more = self._scan(rows, range(index[before] - 1, -1, -1), params, limit)
            chosen.reverse()
        else:
            start = index[after] + 1 if after is not None else 0
            chosen, more = self._scan(rows, range(start, len(rows)), params, limit)
        return {"object": "list", "data": [json.loads(json.dumps(e.obj)) for e in chosen], "has_more": more}


class CountingPublisher:
    """Counts records without keeping them (memory measurements); `largest_batch` = the most held at once."""

    def __init__(self) -> None:
        self.count = 0
        self.largest_batch = 0

    def publish_many_sync(self, records: Iterable[tuple[str, str, bytes]], timeout: float) -> int:
        n = sum(1 for _ in records)
        self.largest_batch = max(self.largest_batch, n)
        self.count += n
        return n


class FakePublisher:
    """Keeps (topic, key, value) of every acknowledged record; `largest_batch` = the most held at once."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []
        self.largest_batch = 0

    def publish_many_sync(self, records: Iterable[tuple[str, str, bytes]], timeout: float) -> int:
        batch = list(records)
        self.largest_batch = max(self.largest_batch, len(batch))
        self.records.extend(batch)
        return len(batch)


class FakeCursors:
    """Cursor states by poller name, stored as the JSON the real store writes."""

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}
        self.saves = 0

    def load_state(self, poller: str) -> dict[str, Any]:
        return json.loads(self.saved[poller]) if poller in self.saved else {}

    def save(self, poller: str, state: dict[str, Any], created: int | None) -> None:
        self.saves += 1
        self.saved[poller] = json.dumps(state)


def event(n: int, created: int, event_type: str = "charge.succeeded") -> dict[str, Any]:
    """A snapshot event about charge `ch_<n>`."""
    return {"id": f"evt_{n:08d}", "object": "event", "type": event_type, "created": created, "livemode": False,
            "api_version": "2026-08-26.dahlia",
            "data": {"object": {"id": f"ch_{n:08d}", "object": "charge", "amount": 100, "currency": "usd"}}}


def balance_txn(n: int, created: int) -> dict[str, Any]:
    """A charge's balance transaction `txn_<n>`."""
    return {"id": f"txn_{n:08d}", "object": "balance_transaction", "type": "charge", "created": created,
            "amount": 100, "fee": 3, "net": 97, "currency": "usd", "available_on": created + 86400,
            "status": "pending", "source": f"ch_{n:08d}", "reporting_category": "charge", "exchange_rate": None}
