"""The agents' batch loop (`streams.app._agent`): order, acknowledgement after handling, the current event, and the
per-batch work (clock, sweep, timing), driven by a stand-in for Faust's stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from prometheus_client import CollectorRegistry

from streams.app import BatchClock, Batching, _agent
from streams.metrics import StreamMetrics


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int


@dataclass(eq=False)
class Event:
    message: Message


@dataclass
class Stream:
    """Yields the given batches from `noack_take` and logs `ack`s, as Faust's stream does with acks left to us."""

    batches: list[list[Event]]
    log: list[tuple[str, Any]]
    taken: list[tuple[int, float]] = field(default_factory=list)

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[Event]]:
        self.taken.append((max_, within))
        for batch in self.batches:
            yield batch

    async def ack(self, event: Event) -> bool:
        self.log.append(("ack", event))
        return True


class Intake:
    """Logs each `handle` with the current event Faust's tables would see and the batch clock; `fail_at` raises."""

    def __init__(self, log: list[tuple[str, Any]], clock: BatchClock, fail_at: Event | None = None) -> None:
        self.log = log
        self.clock = clock
        self.fail_at = fail_at
        self.current: list[tuple[Event, Any, int]] = []

    async def handle(self, event: Event, handler: Any, input_name: str) -> None:
        self.current.append((event, faust.current_event(), self.clock.now_ms))
        if event is self.fail_at:
            raise RuntimeError("handler failed")
        self.log.append(("handle", event))


def _events(*where: tuple[int, int]) -> list[Event]:
    return [Event(Message(p, o)) for p, o in where]


def _run(batches: list[list[Event]], fail_at: Event | None = None, read: Callable[[], int] | None = None,
         after: Callable[[int], None] | None = None, log: list[tuple[str, Any]] | None = None,
         backlog: Callable[[], bool] | None = None, other: Callable[[], Any] | None = None,
         ) -> tuple[list[tuple[str, Any]], Intake, Stream, StreamMetrics]:
    """Drive the agent body over `batches`; (the handle/ack log, the intake, the stream, the metrics)."""
    log = [] if log is None else log
    clock = BatchClock(read) if read else BatchClock()
    intake = Intake(log, clock, fail_at)
    stream = Stream(batches, log)
    metrics = StreamMetrics(CollectorRegistry())
    body = _agent(intake, lambda k, v, o: None, "events", metrics, Batching(500, 0.05), clock,  # type: ignore[arg-type]
                  backlog or (lambda: False), after)

    async def drive() -> None:
        # a task of its own, as Faust's actor: the current event set inside does not leak into the test
        task = asyncio.get_running_loop().create_task(body(stream))
        if other is not None:
            asyncio.get_running_loop().create_task(other())
        await task

    asyncio.run(drive())
    return log, intake, stream, metrics


def test_every_record_is_handled_in_order_and_acknowledged_only_once_it_is_handled() -> None:
    first, second = _events((0, 1), (1, 7), (0, 2)), _events((1, 8), (0, 3))
    log, _, stream, _ = _run([first, second])
    expected: list[tuple[str, Any]] = []
    for event in first + second:
        expected += [("handle", event), ("ack", event)]
    assert log == expected
    assert stream.taken == [(500, 0.05)]


def test_a_failure_mid_batch_leaves_that_record_and_the_rest_of_the_batch_unacknowledged() -> None:
    batch = _events((0, 1), (0, 2), (0, 3), (1, 4))
    log: list[tuple[str, Any]] = []
    with pytest.raises(RuntimeError, match="handler failed"):
        _run([batch, _events((0, 5))], fail_at=batch[2], log=log)
    assert [e for kind, e in log if kind == "ack"] == batch[:2]


def test_each_record_is_the_current_event_while_it_is_handled() -> None:
    batch = _events((0, 1), (3, 9), (0, 2))
    _, intake, _, _ = _run([batch])
    assert [(event, current) for event, current, _ in intake.current] == [(e, e) for e in batch]


def test_the_clock_is_read_once_per_batch_and_every_record_of_a_batch_sees_that_time() -> None:
    reads = iter([100, 200, 300, 400])
    first, second = _events((0, 1), (0, 2)), _events((0, 3))
    _, intake, _, _ = _run([first, second], read=lambda: next(reads))
    # 100: read when the clock is made; one read at the start of each batch
    assert [now for _, _, now in intake.current] == [200, 200, 300]


def test_the_sweep_runs_once_per_partition_of_a_batch_with_that_partitions_last_record_current() -> None:
    swept: list[tuple[int, Any]] = []
    batch, later = _events((0, 1), (2, 5), (0, 2), (2, 6), (0, 3)), _events((2, 7))
    _run([batch, later], after=lambda p: swept.append((p, faust.current_event())))
    assert swept == [(0, batch[4]), (2, batch[3]), (2, later[0])]


def test_processing_time_is_observed_once_per_batch() -> None:
    _, _, _, metrics = _run([_events((0, 1), (0, 2), (0, 3)), _events((1, 1))])
    samples = {s.name: s.value for s in metrics.processing_seconds.collect()[0].samples
               if s.labels.get("input") == "events"}
    assert samples["paysync_stream_processing_seconds_count"] == 2


def test_the_agent_lets_the_loop_run_between_records_only_when_table_writes_pile_up() -> None:
    """The stand-in for Faust's buffer task logs when it runs: between records only while `backlog()` holds."""
    for piled_up, expected in ((False, ["handle", "handle", "handle", "other"]),
                               (True, ["handle", "other", "handle", "handle"])):
        log: list[tuple[str, Any]] = []
        calls = iter([piled_up, False, False])

        async def other() -> None:
            log.append(("other", None))

        _run([_events((0, 1), (0, 2), (0, 3))], log=log, backlog=lambda: next(calls), other=other)
        assert [kind for kind, _ in log if kind != "ack"] == expected
