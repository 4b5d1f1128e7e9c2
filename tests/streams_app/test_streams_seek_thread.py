"""The tail check's seek (`streams.partition_watch`) runs on Faust's consumer thread, where aiokafka's fetcher lives.

faust-streaming runs the aiokafka consumer in its own thread with its own event loop; `app.consumer.seek` calls
aiokafka's `seek` straight from the app's thread, and the fetcher's `seek_to` then deletes from the dict of
fetched records that `fetched_records` is iterating on the consumer thread: `KeyError: TopicPartition(...)`,
the crash seen under load (issue 16). A real Faust app against the dev broker, in this process: the fetcher's
`seek_to` records the thread that calls it.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import faust
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.continuity import Continuity
from streams.metrics import StreamMetrics
from streams.partition_watch import PartitionWatch

RECORDS = 10
WAIT_S = 60.0  # bound on each wait for the app (assignment, records); the moments themselves are events


@pytest.fixture
def topic_of_ten(kafka_bootstrap: str, topic_prefix: str) -> str:
    """A one-partition topic holding records at offsets 0..9."""
    topic = f"{topic_prefix}seek-thread"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for i in range(RECORDS):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    return topic


class Running:
    """A started Faust app whose one agent appends each offset it receives to `seen`; `seen_until(n)` waits
    until it has received `n` records; after `record_seeks()`, the fetcher's `seek_to` calls are in `seeks`."""

    def __init__(self, app: faust.App, seen: list[int], grown: asyncio.Event) -> None:
        self.app = app
        self.seen = seen
        self._grown = grown
        self.seeks: list[tuple[threading.Thread, Any, int]] = []
        self.consumer_thread: threading.Thread = app.consumer._thread._thread

    def record_seeks(self) -> None:
        """Record each successful `seek_to` of aiokafka's fetcher with the thread that made it."""
        fetcher = self.app.consumer._thread._consumer._fetcher
        seek_to = fetcher.seek_to

        def recording_seek_to(tp: Any, offset: int) -> None:
            seek_to(tp, offset)  # raises for a partition not assigned: not recorded then
            self.seeks.append((threading.current_thread(), tp, offset))

        fetcher.seek_to = recording_seek_to

    async def seen_until(self, count: int) -> None:
        async def grown() -> None:
            while len(self.seen) < count:
                self._grown.clear()
                await self._grown.wait()

        await asyncio.wait_for(grown(), WAIT_S)


def run_app(bootstrap: str, topic: str, data_dir: Path, body: Callable[[Running], Awaitable[None]]) -> None:
    """Start a Faust app reading `topic` from the beginning, run `body` once it has read all ten records, stop."""

    async def main() -> None:
        app = faust.App(f"seek-thread-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", store="memory://",
                        datadir=str(data_dir), web_enabled=False, autodiscover=False, topic_disable_leader=True,
                        consumer_auto_offset_reset="earliest", processing_guarantee="at_least_once",
                        broker_session_timeout=6, broker_heartbeat_interval=1.5)
        seen: list[int] = []
        grown = asyncio.Event()

        async def record(stream: faust.StreamT[Any]) -> None:
            events: AsyncIterator[Any] = stream.events()
            async for event in events:
                seen.append(event.message.offset)
                grown.set()

        app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"), name="record")(record)
        await app.start()
        try:
            running = Running(app, seen, grown)
            await running.seen_until(RECORDS)
            running.record_seeks()
            await body(running)
        finally:
            await app.stop()

    asyncio.run(main())


def _watch(app: faust.App, topic: str, continuity: Continuity, partitions: int = 1) -> PartitionWatch:
    """A partition watch on `topic` whose tail check reports a tail that waited 1 s (times are passed in)."""
    watch = PartitionWatch(app, continuity, StreamMetrics(CollectorRegistry()), {topic: "events"},
                           stall_timeout_s=0, tail_check_s=1.0)
    watch.assigned({TP(topic, p) for p in range(partitions)})
    return watch


async def _check_tails_twice(watch: PartitionWatch, highwaters: dict[tuple[str, int], int | None]) -> None:
    """Two tail checks 1 s apart (passed in, not waited for): the second one seeks back every waiting tail."""
    starts = dict.fromkeys(highwaters, 0)
    await watch.seek_back_tails(0.0, {}, highwaters, starts)
    await watch.seek_back_tails(1.0, {}, highwaters, starts)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_tail_seek_runs_on_the_consumer_thread_and_the_tail_is_read_again(
    kafka_bootstrap: str, topic_of_ten: str, tmp_path: Path,
) -> None:
    tp = (topic_of_ten, 0)

    async def body(running: Running) -> None:
        continuity = Continuity()
        continuity.handled(tp, 4)  # records 5..9 were skipped: the next offset to hand on is 5
        await _check_tails_twice(_watch(running.app, topic_of_ten, continuity), {tp: RECORDS})
        seeks = [(thread, (t.topic, t.partition), offset) for thread, t, offset in running.seeks]
        assert seeks == [(running.consumer_thread, tp, 5)], (threading.current_thread(), running.consumer_thread)
        # Faust's own read offset went back too, or it would drop the records read again as already read
        await running.seen_until(RECORDS + 5)
        assert running.seen == [*range(RECORDS), 5, 6, 7, 8, 9]

    run_app(kafka_bootstrap, topic_of_ten, tmp_path, body)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_tail_of_a_partition_no_longer_assigned_is_not_sought_and_the_check_goes_on(
    kafka_bootstrap: str, topic_of_ten: str, tmp_path: Path,
) -> None:
    gone, kept = (topic_of_ten, 1), (topic_of_ten, 0)  # partition 1: watched, but the consumer does not have it

    async def body(running: Running) -> None:
        continuity = Continuity()
        continuity.handled(gone, 0)
        continuity.handled(kept, 6)
        watch = _watch(running.app, topic_of_ten, continuity, partitions=2)
        await _check_tails_twice(watch, {gone: 3, kept: RECORDS})  # no IllegalStateError out of the timer
        assert [(t.partition, offset) for _, t, offset in running.seeks] == [(0, 7)]
        await running.seen_until(RECORDS + 3)
        assert running.seen == [*range(RECORDS), 7, 8, 9]

    run_app(kafka_bootstrap, topic_of_ten, tmp_path, body)
