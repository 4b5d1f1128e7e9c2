"""Queueing a record on a confluent-kafka producer whose local queue may be full."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer


def produce_waiting(producer: Producer, topic: str, value: bytes | None, *, key: bytes | str | None = None,
                    partition: int | None = None, headers: list[tuple[str, bytes]] | None = None,
                    on_delivery: Any = None, poll_s: float = 0.1) -> None:
    """`producer.produce(...)`, serving delivery reports for `poll_s` at a time while librdkafka's local queue is
    full (BufferError), until the record is queued. `partition` None = by key; other Kafka errors propagate."""
    kwargs: dict[str, Any] = {"value": value, "key": key}
    if partition is not None:
        kwargs["partition"] = partition
    if headers is not None:
        kwargs["headers"] = headers
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError:
            producer.poll(poll_s)
