"""Poller cursors in the compacted `paysync.cursors` topic, keyed by poller name.

`load()` reads the topic from the beginning to its end and keeps the last record per key, so a
restarted poller resumes where it stopped; `save()` returns only after the broker's acks=all.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from paysync.codec import AvroCodec
from paysync.topics import CURSORS
from producers.publisher import KafkaPublisher


# Kafka refuses a record over `message.max.bytes` (1,000,000 by default, producer and broker alike). A poller's
# `seen` ids (what its next sweep can list again) grow with the event rate times the horizon: ~90,000 ids at
# 100 events/s over 15 minutes, about 3 MB of JSON. Only the newest are written; the in-memory set stays whole.
# An id left out can only be published again after a restart, and the streams drop it as a copy of an event already
# applied.
MAX_PERSISTED_SEEN = 4_000  # per map: the events poller keeps one per type group (3), ~180 KB each


def persisted_state(state: dict[str, Any], limit: int = MAX_PERSISTED_SEEN) -> dict[str, Any]:
    """`state` as written: every `seen` map ({id: created}) cut to its `limit` newest entries."""
    out = dict(state)
    for key, value in state.items():
        if key == "seen" and isinstance(value, dict) and len(value) > limit:
            out[key] = dict(sorted(value.items(), key=lambda kv: kv[1])[-limit:])
        elif isinstance(value, dict):
            out[key] = persisted_state(value, limit)
    return out


class CursorStore:
    """Reads and writes `paysync.PollerCursor` records; `position` carries the poller's own JSON state."""

    def __init__(self, kafka_conf: dict[str, Any], publisher: KafkaPublisher, topic_prefix: str = "",
                 codec: AvroCodec | None = None, timeout_s: float = 30.0) -> None:
        self.kafka_conf = kafka_conf
        self.publisher = publisher
        self.topic = CURSORS.full_name(topic_prefix)
        self.codec = codec or AvroCodec()
        self.timeout_s = timeout_s

    def load(self, poller: str) -> dict[str, Any] | None:
        """The latest cursor record of `poller`, or None if it never saved one."""
        consumer = Consumer({**self.kafka_conf, "group.id": f"paysync-cursor-reader-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 3})
        try:
            md = consumer.list_topics(self.topic, timeout=self.timeout_s)
            topic_md = md.topics.get(self.topic)
            if topic_md is None or topic_md.error is not None:
                return None
            latest: dict[str, Any] | None = None
            for partition in topic_md.partitions:
                low, high = self._watermarks(consumer, partition)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(self.topic, partition, low)])
                deadline = time.monotonic() + self.timeout_s
                offset = low
                while offset < high - 1 and time.monotonic() < deadline:
                    msg = consumer.poll(0.5)
                    if msg is None or msg.error() is not None:
                        continue
                    offset = msg.offset() or 0  # a record (no error) always has its offset
                    if msg.key() == poller.encode() and msg.value():
                        latest = self.codec.decode(msg.value(), CURSORS.schema)
                if offset < high - 1:
                    raise TimeoutError(f"could not read {self.topic} to its end within {self.timeout_s:.0f} s")
            return latest
        finally:
            consumer.close()

    def _watermarks(self, consumer: Consumer, partition: int) -> tuple[int, int]:
        """(low, high) offsets, retried while a new topic's leader is being elected."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=5)
                return int(low), int(high)
            except KafkaException as exc:
                if not exc.args[0].retriable() and exc.args[0].code() != KafkaError.NOT_LEADER_FOR_PARTITION \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def load_state(self, poller: str) -> dict[str, Any]:
        """The poller's JSON state (`position`) with `created`, or {} for a first start."""
        record = self.load(poller)
        if record is None:
            return {}
        state: dict[str, Any] = json.loads(record["position"]) if record.get("position") else {}
        state.setdefault("created", record.get("created"))
        return state

    def save(self, poller: str, state: dict[str, Any], created: int | None) -> None:
        """Write the cursor and wait for the broker's ack."""
        position = json.dumps(persisted_state(state), separators=(",", ":"))
        record = {"poller": poller, "position": position, "created": created,
                  "updated_at": int(time.time() * 1000)}
        self.publisher.publish_many_sync([(self.topic, poller, self.codec.encode(CURSORS.schema, record))],
                                         timeout=self.timeout_s)
