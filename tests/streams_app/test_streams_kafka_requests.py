"""The stream worker asks the broker for less: one produce request per broker, fetches that wait (issue 16).

`bench/broker_requests.py --by-client` at 100 events/s: the worker sent ~0.4 produce requests and ~0.35 fetches per
input record. aiokafka sends each partition's batch when that batch's own linger runs out, and Faust's consumer
asks the broker to answer at the first byte. The producer Faust builds for the worker is real and talks to the dev
broker here; requests are counted where aiokafka's sender makes them (`Sender._send_produce_req`, one per node).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry

from streams.app import build_app
from streams.metrics import StreamMetrics
from streams.settings import StreamSettings

LINGER_MS = 600
SECOND_SEND_AFTER_S = 0.2


def _settings(tmp_path: Path, bootstrap: str, **overrides: Any) -> StreamSettings:
    return StreamSettings(stream_data_dir=tmp_path, kafka={"bootstrap_servers": bootstrap}, **overrides)


async def _requests_for_two_partitions(settings: StreamSettings, topic: str) -> list[tuple[float, set[int]]]:
    """Send to partition 0, then 0.2 s later to partition 1, with the worker's producer: (seconds after the first
    send, partitions) of each produce request it made."""
    stream_app = build_app(settings, metrics=StreamMetrics(CollectorRegistry()))
    producer = stream_app.app.producer._new_producer()  # type: ignore[attr-defined]  # the one Faust starts
    await producer.start()
    requests: list[tuple[float, set[int]]] = []
    sender = producer._sender
    send_request = sender._send_produce_req
    started = 0.0

    async def counted(node_id: int, batches: dict[Any, Any]) -> Any:
        requests.append((time.monotonic() - started, {tp.partition for tp in batches}))
        return await send_request(node_id, batches)

    sender._send_produce_req = counted
    try:
        await producer.partitions_for(topic)  # metadata first: the linger is what is measured
        started = time.monotonic()
        first = await producer.send(topic, b"first", partition=0)
        await asyncio.sleep(SECOND_SEND_AFTER_S)
        second = await producer.send(topic, b"second", partition=1)
        await asyncio.wait_for(asyncio.gather(first, second), 30)
    finally:
        await producer.stop()
    return requests


def _topic(bootstrap: str, name: str) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(30)
    return name


def test_batches_waiting_for_a_broker_leave_with_the_first_ready_one(
        tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = _topic(kafka_bootstrap, f"{topic_prefix}drain-by-node")
    settings = _settings(tmp_path, kafka_bootstrap, stream_producer_linger_ms=LINGER_MS)
    requests = asyncio.run(_requests_for_two_partitions(settings, topic))
    assert [partitions for _, partitions in requests] == [{0, 1}], requests
    assert requests[0][0] >= LINGER_MS / 1000 * 0.9  # the first batch still waited its own linger


def test_without_it_aiokafka_sends_each_partition_on_its_own_linger(
        tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = _topic(kafka_bootstrap, f"{topic_prefix}drain-by-partition")
    settings = _settings(tmp_path, kafka_bootstrap, stream_producer_linger_ms=LINGER_MS,
                         stream_producer_drain_by_node=False)
    requests = asyncio.run(_requests_for_two_partitions(settings, topic))
    assert [partitions for _, partitions in requests] == [{0}, {1}], requests


def test_the_worker_s_consumer_fetches_wait_on_the_broker(tmp_path: Path) -> None:
    settings = StreamSettings(stream_data_dir=tmp_path, stream_fetch_min_bytes=12_345, stream_fetch_max_wait_ms=321)
    stream_app = build_app(settings, metrics=StreamMetrics(CollectorRegistry()))

    async def created() -> tuple[int, int]:
        thread = stream_app.app.consumer._thread  # type: ignore[attr-defined]  # where Faust builds it at start
        consumer = thread._create_worker_consumer(stream_app.app.transport)
        try:
            return consumer._fetch_min_bytes, consumer._fetch_max_wait_ms
        finally:
            await consumer.stop()

    assert asyncio.run(created()) == (12_345, 321)
    defaults = StreamSettings()
    assert (defaults.stream_fetch_min_bytes, defaults.stream_fetch_max_wait_ms) == (65_536, 100)
