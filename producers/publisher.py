"""A confluent-kafka producer for Stripe data: idempotent, `acks=all`, delivery awaited per record.

`publish()` returns an asyncio future resolved from librdkafka's delivery report (bridged with
`loop.call_soon_threadsafe` from a background poll thread); `publish_many_sync()` is the blocking
form the pollers use. `message.timeout.ms` is set below the caller's deadline so librdkafka gives a
record up before the caller answers "failed". Caveat: an idempotent producer can still complete a
write that was already in flight when the timeout fired, so a record reported as failed may appear
on Kafka (a duplicate the streams deduplicate); a record reported as delivered is always there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from paysync.produce import produce_waiting

log = logging.getLogger(__name__)


class PublishError(Exception):
    """A record was not acknowledged by the broker (timeout, queue full, broker error)."""


def producer_config(base: dict[str, Any], message_timeout_ms: int, linger_ms: int = 5) -> dict[str, Any]:
    """librdkafka settings for paysync's producers: idempotent, acks=all, bounded delivery time."""
    return {
        **base,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        "message.timeout.ms": message_timeout_ms,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 200_000,
        "socket.connection.setup.timeout.ms": max(1000, min(message_timeout_ms, 10_000)),
        "reconnect.backoff.max.ms": 1000,
        "log_level": 3,
    }


def _settle(fut: asyncio.Future[None], err: KafkaError | None) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(PublishError(err.str()))


class KafkaPublisher:
    """Owns one Producer and the thread that serves its callbacks. Use `start()`/`close()`."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)

    def start(self) -> "KafkaPublisher":
        self._thread.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def publish(self, topic: str, key: str, value: bytes) -> asyncio.Future[None]:
        """Queue one record; the future resolves once the broker acknowledged it (PublishError otherwise)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            try:
                loop.call_soon_threadsafe(_settle, fut, err)
            except RuntimeError:  # its loop is closed: nobody awaits it (raised, this would end the poll thread)
                log.debug("delivery report for a closed event loop dropped", extra={"topic": topic, "key": key})

        try:
            self._producer.produce(topic, value, key.encode(), on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            fut.set_exception(PublishError(f"not queued: {exc}"))
        return fut

    def publish_many_sync(self, records: Iterable[tuple[str, str, bytes]], timeout: float) -> int:
        """Queue records and block until all are acknowledged; PublishError if any is not. Returns the count."""
        errors: list[str] = []
        done = threading.Event()
        pending = 0
        lock = threading.Lock()

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            nonlocal pending
            with lock:
                if err is not None:
                    errors.append(err.str())
                pending -= 1
                if pending == 0:
                    done.set()

        count = 0
        for topic, key, value in records:
            with lock:
                pending += 1
            produce_waiting(self._producer, topic, value, key=key.encode(), on_delivery=on_delivery)
            count += 1
        if count == 0:
            return 0
        self._producer.flush(timeout)
        if not done.wait(timeout):
            raise PublishError(f"{pending} of {count} records not acknowledged within {timeout:.0f} s")
        if errors:
            raise PublishError(f"{len(errors)} of {count} records failed: {errors[0]}")
        return count

    def broker_reachable(self, timeout: float = 1.0) -> bool:
        """Whether cluster metadata can be fetched within `timeout` seconds (blocking)."""
        try:
            md = self._producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return bool(md.brokers)

    def close(self, timeout: float = 10.0) -> int:
        """Flush what is queued (up to `timeout` s), stop the poll thread; returns records left unflushed."""
        left = self._producer.flush(timeout)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        return int(left)
