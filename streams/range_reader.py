"""Reads a range of offsets of one partition straight from the broker, for the continuity guard.

A plain confluent-kafka consumer that is assigned partitions (it never joins a group and never commits),
created on first use and shared by the worker's agents (calls are serialised; they block, so the worker
runs them in a thread).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


class RangeReadError(Exception):
    """The broker did not deliver the range (unreachable, timed out, or an error)."""


@dataclass(frozen=True)
class RawRecord:
    offset: int
    key: bytes | None
    value: bytes | None


class RangeReader:
    """`read(topic, partition, start, stop)` against one cluster."""

    def __init__(self, conf: dict[str, Any], group_id: str, timeout_s: float = 30.0) -> None:
        self._conf = {**conf, "group.id": group_id, "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "enable.partition.eof": True}
        self.timeout_s = timeout_s
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def _client(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(self._conf)
        return self._consumer

    def read(self, topic: str, partition: int, start: int, stop: int) -> list[RawRecord]:
        """The records at `start` ≤ offset < `stop`, in offset order.

        Offsets that hold no record (transaction markers, compacted away, before the log start) are simply
        absent. Reading ends at the record before `stop`, at the first record at or after `stop`, or at the
        end of the partition. Raises `RangeReadError` on a broker error or after `timeout_s`.
        """
        records: list[RawRecord] = []
        if start >= stop:
            return records
        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            consumer = self._client()
            consumer.assign([TopicPartition(topic, partition, start)])
            try:
                while True:
                    if time.monotonic() >= deadline:
                        raise RangeReadError(
                            f"{topic}[{partition}] offsets {start}..{stop - 1}: not read within {self.timeout_s} s "
                            f"({len(records)} record(s) so far)")
                    msg = consumer.poll(0.1)
                    if msg is None:
                        continue
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return records
                        raise RangeReadError(f"{topic}[{partition}] offsets {start}..{stop - 1}: {error}")
                    offset = msg.offset()
                    if offset is None:  # only error events have no offset, and they were handled above
                        continue
                    if offset >= stop:
                        return records
                    if offset >= start:
                        records.append(RawRecord(offset, msg.key(), msg.value()))
                    if offset == stop - 1:
                        return records
            except KafkaException as exc:
                raise RangeReadError(f"{topic}[{partition}] offsets {start}..{stop - 1}: {exc}") from exc
            finally:
                consumer.unassign()

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
