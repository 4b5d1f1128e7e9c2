"""`produce_waiting`: a full local queue is waited out (delivery reports served), never dropped or raised."""

from __future__ import annotations

from typing import Any

import pytest

from paysync.produce import produce_waiting


class FullThenFree:
    """A producer whose local queue is full for the first `full` calls."""

    def __init__(self, full: int) -> None:
        self.full = full
        self.produced: list[tuple[str, dict[str, Any]]] = []
        self.polls: list[float] = []

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((topic, kwargs))

    def poll(self, timeout: float) -> int:
        self.polls.append(timeout)
        return 0


def test_a_full_queue_is_polled_until_the_record_is_queued() -> None:
    producer: Any = FullThenFree(full=3)
    produce_waiting(producer, "t", b"v", key=b"k", partition=2, headers=[("h", b"1")], poll_s=0.05)
    assert producer.polls == [0.05, 0.05, 0.05]
    assert producer.produced == [("t", {"value": b"v", "key": b"k", "partition": 2, "headers": [("h", b"1")]})]


def test_unset_partition_headers_and_callback_are_left_to_the_client() -> None:
    producer: Any = FullThenFree(full=0)
    produce_waiting(producer, "t", None)
    assert producer.produced == [("t", {"value": None, "key": None})] and producer.polls == []


def test_other_errors_propagate() -> None:
    class Broken(FullThenFree):
        def produce(self, topic: str, **kwargs: Any) -> None:
            raise ValueError("bad topic")

    with pytest.raises(ValueError):
        produce_waiting(Broken(0), "t", b"v")  # type: ignore[arg-type]
