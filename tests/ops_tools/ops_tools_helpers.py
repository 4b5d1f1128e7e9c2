"""Small helpers for the operator-tool tests: produce and read records on the real broker."""

from __future__ import annotations

import io
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def produce(bootstrap: str, topic: str, records: list[tuple[int, bytes | None, bytes | None]],
            timestamps: list[int] | None = None) -> list[tuple[int, int]]:
    """Produce (partition, key, value) records in order; returns their (partition, offset)."""
    delivered: list[tuple[int, int]] = []
    errors: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset()))

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})
    for i, (part, key, value) in enumerate(records):
        kwargs: dict[str, Any] = {"partition": part, "key": key, "value": value, "on_delivery": report}
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        producer.produce(topic, **kwargs)
    assert producer.flush(30) == 0
    assert not errors, errors
    return delivered


def read_all(bootstrap: str, topic: str, partitions: list[int]) -> list[Any]:
    """Every record currently in those partitions (reads up to the high watermark taken now)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[Any] = []
        idle = 0
        while todo and idle < 150:
            batch = consumer.consume(500, timeout=0.2)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error() is not None:
                    if msg.error().code() == KafkaError._PARTITION_EOF and msg.offset() >= ends[msg.partition()]:
                        todo.discard(msg.partition())
                    continue
                if msg.offset() < ends[msg.partition()]:
                    out.append(msg)
                if msg.offset() >= ends[msg.partition()] - 1:
                    todo.discard(msg.partition())
        assert not todo, f"partitions {todo} not read to their end"
        return out
    finally:
        consumer.close()


def run(main: Any, argv: list[str]) -> tuple[int, str, str]:
    """Run a `main(argv, stdout, stderr)` entry point, capturing its output."""
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()
