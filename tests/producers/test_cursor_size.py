"""A poller cursor stays under Kafka's 1,000,000-byte record limit at any event rate."""

from __future__ import annotations

import json

from producers.cursors import MAX_PERSISTED_SEEN, persisted_state


def _seen(n: int, prefix: str) -> dict[str, int]:
    return {f"evt_{prefix}{i:024d}": 1_700_000_000 + i // 100 for i in range(n)}


def test_a_cursor_of_a_busy_account_fits_in_one_kafka_record() -> None:
    # 100 events/s over a 15-minute horizon: 90,000 seen ids in each of the events poller's three type groups
    state = {"lists": {g: {"created": 1, "seen": _seen(90_000, g)} for g in ("a", "b", "c")}, "seen": _seen(90_000, "t")}
    assert len(json.dumps(state, separators=(",", ":"))) > 1_000_000  # the old cursor could not be produced
    written = persisted_state(state)
    assert len(json.dumps(written, separators=(",", ":"))) < 1_000_000
    for group in ("a", "b", "c"):
        kept = written["lists"][group]["seen"]
        assert len(kept) == MAX_PERSISTED_SEEN
        assert min(kept.values()) == max(state["lists"][group]["seen"].values()) - (MAX_PERSISTED_SEEN - 1) // 100
    assert len(state["lists"]["a"]["seen"]) == 90_000, "the poller's own state is left whole"


def test_a_small_cursor_is_written_as_it_is() -> None:
    state = {"created": 5, "seen": _seen(10, "x"), "payouts_final": {"po_1": 3}}
    assert persisted_state(state) == state
