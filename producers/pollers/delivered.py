"""The ids of events already durable on `stripe.events`, so the events poller does not publish them again (issue 16).

The webhook receiver usually publishes an event seconds before the poller lists it; the poller's copy then costs a
broker write, a stream decode and a version lookup, only to be dropped by the streams as a copy of an event already
applied. A `DeliveredEvents` reads `stripe.events` itself (a consumer without a group: `assign()` from `window_s`
back, at most `max_ids` records in all, nothing committed) and keeps the event ids it *read back* from the topic
for `window_s` (by record timestamp, at most `max_ids`, oldest forgotten first). Read back means durable: a consumer
only gets records below the high watermark, i.e. written to every in-sync replica (the producers send with
acks=all). An id that was merely sent (by the receiver, or by the poller itself) is not in the set until it is read
back.

Never drop on doubt: `already_on_topic()` answers "none" unless the set is *current*: the consumer confirmed, at most
`max_behind_s` ago, that it had read every partition up to the end offsets the broker reported (`covered_at`). A
consumer that cannot reach the broker, is behind, or met any error has no current confirmation, so the poller
publishes everything. An error on a partition (topic deleted or recreated, offsets out of range) also empties the
set and reopens the consumer: ids read from a topic that has since changed prove nothing.

A listed copy is dropped only when the copy read back was rendered at the same API version (`api_version` of the
envelope): a webhook endpoint at another version (a legacy or Connect endpoint) renders the object in another shape,
which the streams may have dead-lettered where the listed copy maps; that listed copy is still published.

Only snapshot events are remembered: a thin event on the topic (`thin`) is skipped by the streams without writing a
version, so the listed snapshot must still be published. Each record is decoded as the streams decode it
(`envelope_id`, ~10 µs for a 3 KB record: reading only the front of the Avro body saved ~2 µs in Python and would
remember the ids of records the streams cannot decode); a record that does not decode is not remembered.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Message, TopicPartition

from paysync.codec import AvroCodec, CodecError
from paysync.records import ENVELOPE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveredConfig:
    """How much the set remembers, how current it must be to be used, how often the consumer confirms it."""

    window_s: float = 1200.0
    max_ids: int = 200_000
    max_behind_s: float = 30.0
    check_every_s: float = 2.0
    request_timeout_s: float = 5.0
    retry_every_s: float = 5.0  # a consumer that failed to open is tried again after this
    # The broker holds each fetch until this many bytes are there or this long has passed: the set needs to be
    # current within seconds, not milliseconds, so one fetch a second instead of one per produce request
    # (librdkafka's defaults, 1 byte and 500 ms, answer as soon as anything arrives).
    fetch_min_bytes: int = 1_048_576
    fetch_wait_ms: int = 1000


def envelope_id(value: bytes | None, codec: AvroCodec) -> tuple[str, str | None] | None:
    """(`event_id`, `api_version`) of a snapshot envelope record, None if it is thin or does not decode as the streams
    would decode it (`CodecError`): such a record is not remembered."""
    try:
        record = codec.decode_record(ENVELOPE, value)
    except CodecError:
        return None
    return None if record.get("thin") else (record["event_id"], record.get("api_version"))


# --- the set and its consumer -------------------------------------------------------------------------------------

class DeliveredEvents:
    """Event ids read back from `topic`; `start()` runs the consumer in a thread (`pump()` is one round of it).

    `clock` (monotonic seconds) dates the confirmations that make the set current; tests move it by hand.
    """

    def __init__(self, kafka_conf: dict[str, Any], topic: str, config: DeliveredConfig | None = None,
                 clock: Callable[[], float] = time.monotonic, codec: AvroCodec | None = None) -> None:
        self.kafka_conf, self.topic = kafka_conf, topic
        self.codec = codec or AvroCodec()
        self.config = config or DeliveredConfig()
        self.clock = clock
        # event id -> (record timestamp ms, API version it was rendered at), oldest first
        self._ids: OrderedDict[str, tuple[int, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._consumer: Consumer | None = None
        self._next: dict[int, int] = {}  # partition -> the next offset to read (what is below it is in the set)
        self._pending: tuple[float, dict[int, int]] | None = None  # a check's time and the end offsets it saw
        self._covered_at: float | None = None  # everything written before this moment is in the set
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.read = 0  # records read back (for measurements)

    # the poller's side

    def already_on_topic(self, listed: Iterable[tuple[str, str | None]]) -> set[str]:
        """The ids of `listed` (event id, API version) read back from the topic at that same API version; none unless
        the set is current (`current()`)."""
        with self._lock:
            if not self._current():
                return set()
            return {event_id for event_id, version in listed
                    if (seen := self._ids.get(event_id)) is not None and seen[1] == version}

    def current(self) -> bool:
        """Whether the consumer confirmed, at most `max_behind_s` ago, that it had read the topic to its end."""
        with self._lock:
            return self._current()

    def _current(self) -> bool:
        return self._covered_at is not None and self.clock() - self._covered_at <= self.config.max_behind_s

    def __len__(self) -> int:
        return len(self._ids)

    def wait_current(self, timeout_s: float) -> bool:
        """Block until the set covers what was on the topic when called (or `timeout_s`); whether it does."""
        asked = self.clock()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._thread is None:
                self.pump(0.2)
            with self._lock:
                if self._covered_at is not None and self._covered_at >= asked and self._current():
                    return True
            if self._thread is not None:
                self._stop.wait(0.05)
        return False

    # the consumer's side

    def start(self) -> "DeliveredEvents":
        self._thread = threading.Thread(target=self._run, name="delivered-events", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)
        self._drop_consumer(forget=False)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump(0.5)
            except Exception:  # noqa: BLE001 - the set is only an optimisation: it must never stop the poller
                log.exception("delivered-events consumer failed; every listed event is published meanwhile")
                self._drop_consumer(forget=True)
                self._stop.wait(self.config.retry_every_s)

    def pump(self, timeout_s: float) -> int:
        """One round: open the consumer if needed, read what arrived, confirm coverage when due; the records read."""
        consumer = self._consumer or self._open()
        if consumer is None:
            return 0
        messages = consumer.consume(1000, timeout_s)
        for msg in messages:
            error = msg.error()
            if error is not None:
                self._partition_error(error)
                return 0
            self._remember(msg)
        self._evict()
        self._confirm(consumer)
        self.read += len(messages)
        return len(messages)

    def _remember(self, msg: Message) -> None:
        partition, offset = msg.partition(), msg.offset()
        if partition is None or offset is None:
            return
        self._next[partition] = offset + 1
        found = envelope_id(msg.value(), self.codec)
        if found is None:
            return
        event_id, version = found
        kind, stamp = msg.timestamp()
        with self._lock:
            self._ids[event_id] = (stamp if kind != 0 and stamp > 0 else int(time.time() * 1000), version)
            self._ids.move_to_end(event_id)

    def _evict(self) -> None:
        oldest = int((time.time() - self.config.window_s) * 1000)
        with self._lock:
            while self._ids and (len(self._ids) > self.config.max_ids or next(iter(self._ids.values()))[0] < oldest):
                self._ids.popitem(last=False)

    def _confirm(self, consumer: Consumer) -> None:
        """Coverage: once every partition was read up to the end offsets of a check, the check's moment is covered."""
        now = self.clock()
        if self._pending is not None:
            checked_at, ends = self._pending
            if all(self._next.get(p, 0) >= end for p, end in ends.items()):
                with self._lock:
                    self._covered_at = checked_at
                self._pending = None
        if self._pending is None and (self._covered_at is None or now - self._covered_at >= self.config.check_every_s):
            try:
                ends = self._ends(consumer, list(self._next))
            except KafkaException as exc:  # the broker did not answer: not current until it does
                self._broker_error(exc.args[0])
                return
            self._pending = (now, ends)
            if all(self._next[p] >= end for p, end in ends.items()):
                with self._lock:
                    self._covered_at = now
                self._pending = None

    def _ends(self, consumer: Consumer, partitions: list[int]) -> dict[int, int]:
        """The broker's end offsets of `partitions`, asked now: one ListOffsets request (timestamp -1, "latest") for
        all of them where `get_watermark_offsets` sends one per partition; KafkaException on any error."""
        if not partitions:
            return {}
        found = consumer.offsets_for_times([TopicPartition(self.topic, p, OFFSET_END) for p in partitions],
                                           timeout=self.config.request_timeout_s)
        ends: dict[int, int] = {}
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
            if tp.offset < 0:
                raise KafkaException(KafkaError(KafkaError._NO_OFFSET, f"no end offset for partition {tp.partition}"))
            ends[tp.partition] = int(tp.offset)
        return ends

    def _open(self) -> Consumer | None:
        """A consumer assigned to every partition from `window_s` back (at most `max_ids` records), or None."""
        if time.monotonic() < self._retry_at:
            return None
        consumer = Consumer({**self.kafka_conf, "group.id": f"paysync-poller-delivered-{uuid.uuid4().hex}",
                             "enable.auto.commit": False, "enable.auto.offset.store": False,
                             "auto.offset.reset": "error", "error_cb": self._broker_error, "log_level": 3,
                             "fetch.min.bytes": self.config.fetch_min_bytes,
                             "fetch.wait.max.ms": self.config.fetch_wait_ms})
        try:
            starts = self._starts(consumer)
        except (KafkaException, LookupError) as exc:
            consumer.close()
            self._retry_at = time.monotonic() + self.config.retry_every_s
            log.warning("delivered-events consumer cannot read the topic; every listed event is published",
                        extra={"topic": self.topic, "error": str(exc)})
            return None
        consumer.assign([TopicPartition(self.topic, p, offset) for p, offset in starts.items()])
        self._consumer, self._next = consumer, dict(starts)
        return consumer

    def _starts(self, consumer: Consumer) -> dict[int, int]:
        """Per partition: the first offset at or after `window_s` ago, at most `max_ids / partitions` from the end."""
        md = consumer.list_topics(self.topic, timeout=self.config.request_timeout_s)
        topic_md = md.topics.get(self.topic)
        if topic_md is None or topic_md.error is not None or not topic_md.partitions:
            raise LookupError(f"topic {self.topic} not found: {topic_md.error if topic_md else 'no metadata'}")
        partitions = sorted(topic_md.partitions)
        since_ms = int((time.time() - self.config.window_s) * 1000)
        found = consumer.offsets_for_times([TopicPartition(self.topic, p, since_ms) for p in partitions],
                                           timeout=self.config.request_timeout_s)
        per_partition = max(1, self.config.max_ids // len(partitions))
        ends = self._ends(consumer, partitions)
        starts: dict[int, int] = {}
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
            end = ends[tp.partition]
            first = end if tp.offset < 0 or tp.offset == OFFSET_END else tp.offset
            starts[tp.partition] = max(first, end - per_partition)
        return starts

    def _broker_error(self, err: KafkaError) -> None:
        """Any client error (broker down, transport): no longer current until a new check confirms it."""
        log.info("delivered-events consumer error", extra={"error": err.str()})
        with self._lock:
            self._covered_at = None
        self._pending = None

    def _partition_error(self, err: KafkaError) -> None:
        """A partition error (topic gone or recreated, offsets out of range): forget everything, reopen."""
        log.warning("delivered-events consumer lost its position; the set is emptied",
                    extra={"topic": self.topic, "error": err.str()})
        self._drop_consumer(forget=True)

    def _drop_consumer(self, forget: bool) -> None:
        consumer, self._consumer = self._consumer, None
        with self._lock:
            self._covered_at = None
            if forget:
                self._ids.clear()
        self._pending = None
        if consumer is not None:
            consumer.close()
