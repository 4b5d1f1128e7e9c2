"""The Faust app: topics, RocksDB tables and three agents around `streams.processor.Processor`.

`build_app(settings)` returns a `StreamApp` (the Faust app plus the processor); nothing is created at
import time. Agents run with concurrency 1 under at-least-once. Each input record's outputs are handed
to the producer and its table writes applied at once, without waiting for the broker's acknowledgement:
- Faust commits an input offset only after `app.producer.flush()` has waited for everything produced so
  far, so every output of a committed record is durable;
- aiokafka's flush waits for failed batches too, without raising: a delivery that fails after the
  producer's retries therefore stops the process at once (`_fail_stop`), before any later commit;
- an uncommitted record is replayed after a crash, and the processor's origin-tagged table entries make
  it re-emit its outputs (the argument is written out in `streams.processor`).

Agents:
- `events`:   `stripe.events` → upserts / dead letters / payout headers.
- `balance`:  `stripe.balance_transactions` → upserts / dead letters / payout members.
- `payouts`:  `<app id>-payout-join` (internal, keyed by payout id) → payout reconciliations.

Every record an agent receives passes the continuity guard first (`streams.continuity`): a record above the
next offset its partition must handle means Faust skipped some; they are read from the broker and handled first.
A partition whose records wait past the last one handled, with nothing handled for `stream_tail_check_s`, gets
the consumer sought back to them (skipped records that no later record reveals).

A stall watchdog (`streams.watchdog`) ends the process with status 75 when an assigned partition of these
topics has had records waiting and its committed offset has not moved for `stream_stall_timeout_s`: Faust can
stop fetching a partition after a rebalance, or its producer can stop delivering (outputs never acknowledged,
so nothing is committed), and a clean stop can hang in either state. The next owner replays what was not
committed. Produce requests time out after `stream_producer_request_timeout_s` (Faust's default is 20 minutes),
which stops the process through `_fail_stop` as well.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import faust
import orjson
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP, EventT
from prometheus_client import REGISTRY, CollectorRegistry

from paysync.codec import AvroCodec, CodecError
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.continuity import Continuity, Guard, TailWatch
from streams.metrics import StreamMetrics
from streams.outputs import Origin, Output, OutputEncoder, Target, dead_letter_output
from streams.ports import Mapper, RealMapper
from streams.processor import Processor, Retention, Step, Tables
from streams.range_reader import RangeReader, RangeReadError
from streams.settings import TABLE_NAMES, StreamSettings
from streams.watchdog import StallWatch, Waiting

Handler = Callable[[bytes | None, bytes | None, Origin], Step]

log = logging.getLogger("paysync.streams")

EXIT_STALLED = 75  # EX_TEMPFAIL: restarted by the supervisor; the group moves the partitions meanwhile
OFFSETS_TIMEOUT_S = 10.0  # Faust's consumer thread takes such calls between fetches (a 1 s long poll)


def _now_ms() -> int:
    return int(time.time() * 1000)


def faust_app(settings: StreamSettings) -> faust.App:
    """A Faust app configured for paysync: at-least-once, earliest, small commit interval, web off unless a port."""
    conf: dict[str, Any] = {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",") if h.strip()],
        "store": settings.stream_store,
        "datadir": str(settings.stream_data_dir),
        "processing_guarantee": "at_least_once",
        "topic_partitions": settings.topic_partitions,
        "broker_commit_interval": settings.stream_commit_interval,
        "consumer_auto_offset_reset": "earliest",
        "autodiscover": False,
        "web_enabled": settings.stream_web_port is not None,
        "web_bind": "127.0.0.1",
        "web_port": settings.stream_web_port or 6066,
        "topic_disable_leader": True,
        "table_standby_replicas": 0,
        "producer_acks": -1,
        "producer_request_timeout": settings.stream_producer_request_timeout_s,
        # a subscribed topic that appears after a rebalance (Faust's assignor skipped it) is noticed at the next
        # metadata refresh, which then rebalances: every 30 s rather than aiokafka's 5 minutes
        "consumer_metadata_max_age_ms": 30_000,
        "producer_linger": settings.stream_producer_linger_ms / 1000.0,
        "producer_max_batch_size": settings.stream_producer_batch_bytes,
        "producer_compression_type": settings.stream_producer_compression or None,
        "broker_commit_every": settings.stream_commit_every,
        "broker_session_timeout": settings.stream_session_timeout_s,
        "broker_heartbeat_interval": min(3.0, settings.stream_session_timeout_s / 4),
    }
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        conf["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username or "", password=password,
            mechanism=settings.kafka_sasl_mechanism,
        )
    return faust.App(settings.app_id, **conf)


def _fail_stop(delivery: "asyncio.Future[Any]") -> None:
    """Done-callback of every output: a record the producer gave up on ends the process before the next commit.

    aiokafka's `flush()` (awaited by Faust before each offset commit) also returns for failed batches, so
    carrying on could commit the offset of a record whose output was lost. Exiting at once leaves that
    offset uncommitted: the record is replayed and re-emitted by the next worker.
    """
    if delivery.cancelled():
        error: BaseException | None = asyncio.CancelledError()
    else:
        error = delivery.exception()
    if error is None:
        return
    log.critical("an output was not delivered; stopping before the next commit",
                 extra={"error": f"{type(error).__name__}: {error}"})
    _exit_now(70)


def _exit_now(status: int) -> NoReturn:
    """Flush the logs and end the process at once: no Faust shutdown, no offset commit."""
    logging.shutdown()
    os._exit(status)


async def _partition_offsets(app: faust.App, tps: set[TP]) -> tuple[Mapping[TP, int | None], Mapping[TP, int | None]]:
    """Broker highwaters and log start offsets of `tps`; empty maps when the broker does not answer."""
    consumer = app.consumer
    try:
        highwaters, earliest = await asyncio.wait_for(
            asyncio.gather(consumer.highwaters(*tps), consumer.earliest_offsets(*tps)), OFFSETS_TIMEOUT_S,
        )
    except Exception as exc:  # noqa: BLE001 - no answer is no evidence of a stall
        log.warning("stall watch: no offsets from the broker", extra={"error": f"{type(exc).__name__}: {exc}"})
        return {}, {}
    return highwaters, earliest


def _report_stalls(waiting: list[Waiting], timeout_s: float) -> None:
    """Exit (status 75) when any partition is stalled; Faust cannot be relied on to stop cleanly then."""
    stalled = [w for w in waiting if w.stalled]
    if not stalled:
        return
    log.critical("input partitions have records waiting and made no progress; exiting so that another worker "
                 "takes them over", extra={"timeout_s": timeout_s, "stalled": [
                     {"topic": w.tp[0], "partition": w.tp[1], "processed": w.processed, "start": w.start,
                      "highwater": w.highwater, "seconds": round(w.seconds, 1)} for w in stalled]})
    _exit_now(EXIT_STALLED)


class LeanPrometheusMonitor(PrometheusMonitor):
    """Faust's Prometheus monitor (same `<prefix>_*` metrics) with its per-record label lookups cached."""

    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics=metrics, **kwargs)
        # not `_children`: that is mode.Service's list of child services, stopped with the monitor
        self._label_children: dict[tuple[int, tuple[Any, ...]], Any] = {}
        self._stream_labels: dict[int, str] = {}

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), labels)
        found = self._label_children.get(key)
        if found is None:
            found = self._label_children[key] = metric.labels(*labels)
        return found

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        m = self._metrics
        m.messages_received.inc()
        m.active_messages.inc()
        self._child(m.messages_received_per_topics, tp.topic).inc()
        self._child(m.messages_received_per_topics_partition, tp.topic, tp.partition).set(offset)

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        m = self._metrics
        m.total_events.inc()
        m.total_active_events.inc()
        label = self._stream_labels.get(id(stream))
        if label is None:
            label = self._stream_labels[id(stream)] = f"stream.{self._stream_label(stream)}.events"
        self._child(m.total_events_per_stream, label).inc()
        return state

    def _table_op(self, table: Any, operation: str) -> None:
        self._child(self._metrics.table_operations, f"table.{table.name}", operation).inc()

    def on_table_get(self, table: Any, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table_op(table, self.KEYS_RETRIEVED)

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table_op(table, self.KEYS_UPDATED)

    def on_table_del(self, table: Any, key: Any) -> None:
        Monitor.on_table_del(self, table, key)
        self._table_op(table, self.KEYS_DELETED)

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int, valsize: int) -> Any:
        self._child(self._metrics.topic_messages_sent, f"topic.{topic}").inc()
        return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        Monitor.track_tp_end_offset(self, tp, offset)
        self._child(self._metrics.topic_partition_end_offset, tp.topic, tp.partition).set(offset)


def setup_faust_metrics(app: faust.App, name_prefix: str = "paysync_faust",
                        registry: CollectorRegistry = REGISTRY) -> None:
    """Faust's own metrics (`<prefix>_*`: consumer offsets, lag, commits …) on `registry`, with cheap hot paths."""
    app.monitor = LeanPrometheusMonitor(metrics=FaustMetrics.create(registry, name_prefix))


class TableView(MutableMapping[str, Any]):
    """A Faust table for the processor: reads go straight to the store (one lookup in the current event's
    partition instead of Faust's contains-then-get), writes and deletes go through the table (changelog)."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._store = table.data

    def __getitem__(self, key: str) -> Any:
        return self._store[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._store[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        self._table[key] = value

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


@dataclass
class _SweepState:
    last_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    sizes: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class StreamApp:
    """The Faust app and the processor its agents drive."""

    app: faust.App
    processor: Processor
    settings: StreamSettings
    watch: StallWatch


def _partition_items(table: Any, partition: int) -> Iterator[tuple[Any, Any]]:
    """(key, value) of one partition of a table: RocksDB keeps one database per partition."""
    store = table.data
    db_for = getattr(store, "_db_for_partition", None)
    if db_for is None:  # memory:// store: one dict for every partition (tests only)
        yield from list(table.items())
        return
    for raw_key, raw_value in store._visible_items(db_for(partition)):
        yield store._decode_key(raw_key), store._decode_value(raw_value)


def build_app(
    settings: StreamSettings, mapper: Mapper | None = None, metrics: StreamMetrics | None = None,
    codec: AvroCodec | None = None,
) -> StreamApp:
    """Wire topics, tables and agents; `mapper`/`metrics`/`codec` are injectable for tests."""
    app = faust_app(settings)
    prefix = settings.topic_prefix
    partitions = settings.topic_partitions
    codec = codec or AvroCodec(settings.schema_registry_url)
    encoder = OutputEncoder(codec)
    metrics = metrics or StreamMetrics()
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    events_topic = app.topic(STRIPE_EVENTS.full_name(prefix), **raw)
    bts_topic = app.topic(STRIPE_BALANCE_TRANSACTIONS.full_name(prefix), **raw)
    upserts_topic = app.topic(SALESFORCE_UPSERTS.full_name(prefix), **raw)
    dlq_topic = app.topic(DEAD_LETTERS.full_name(prefix), **raw)
    payout_topic = app.topic(
        settings.payout_join_topic, partitions=partitions, internal=True, **raw,
    )
    tables = {
        name: app.Table(name, default=None, partitions=partitions, key_type=str)
        for name in TABLE_NAMES
    }
    processor = Processor(
        mapper or RealMapper(settings), codec, metrics, Tables(**{n: TableView(t) for n, t in tables.items()}),
        Retention(
            dedupe_ms=int(settings.stream_dedupe_retention_days * 86_400_000),
            payout_ms=int(settings.stream_payout_retention_hours * 3_600_000),
        ),
    )
    sweeps = _SweepState()

    producer_send = app.producer.send
    topic_names = {
        Target.UPSERT: upserts_topic.get_topic_name(), Target.DEAD_LETTER: dlq_topic.get_topic_name(),
        Target.PAYOUT: payout_topic.get_topic_name(),
    }

    def to_bytes(out: Output) -> bytes:
        if out.target is Target.PAYOUT:
            return orjson.dumps(out.value)
        return encoder.encode(out)

    async def deliver(step: Step, origin: Origin, key: bytes | None, value: bytes | None) -> None:
        """Hand a step's outputs to the producer (no waiting for acks), then apply its table writes.

        The writes go to the changelog partition of the current event (Faust's rule), i.e. the input partition
        (a record read to fill a hole belongs to the current event's partition too).
        """
        if step.outputs:
            try:
                encoded = [(out, to_bytes(out)) for out in step.outputs]
            except CodecError as exc:  # a mapping produced a record that does not fit the schema: a bug, dead-letter
                dead = dead_letter_output(origin, key, value, "internal", exc.code, exc.message)
                metrics.child(metrics.dead_lettered, "output", exc.code).inc()
                step = Step([dead], [])
                encoded = [(dead, encoder.encode(dead))]
            for out, encoded_value in encoded:
                delivery = await producer_send(topic_names[out.target], out.key, encoded_value, None, None, None)
                delivery.add_done_callback(_fail_stop)
        if step.writes:
            processor.apply(step)

    continuity = Continuity()

    def assignment_start(tp: tuple[str, int]) -> int:
        """Where the consumer began reading `tp` in this assignment: the committed offset, else the log start.

        Nothing committed is taken as offset 0: reading a hole that starts before the log start begins at the
        log start, so this costs one short read when the log no longer starts at 0.
        """
        committed = app.consumer._committed_offset.get(TP(*tp))  # no public accessor; None also stands for offset 0
        return int(committed) if committed else 0

    guard = Guard(continuity, RangeReader(settings.confluent_config(), group_id=f"{settings.app_id}-range-reader"),
                  assignment_start)

    async def handle(event: EventT, handler: Handler, input_name: str) -> None:
        """Hand `event` to `handler` and deliver the step, after any records the consumer skipped before it."""
        msg = event.message
        tp = (msg.topic, msg.partition)
        try:
            missing = await guard.missing(tp, msg.offset)
        except RangeReadError as exc:
            # the record that revealed the hole is not acknowledged yet, so no commit passes the hole
            log.critical("continuity: records the consumer skipped cannot be read; exiting so that they are "
                         "replayed", extra={"topic": msg.topic, "partition": msg.partition, "error": str(exc)})
            _exit_now(EXIT_STALLED)
        if missing:
            log.warning("continuity: the consumer skipped records; read them from the broker", extra={
                "topic": msg.topic, "partition": msg.partition, "from": missing[0].offset, "to": missing[-1].offset,
                "records": len(missing)})
            metrics.child(metrics.refetched, input_name).inc(len(missing))
            for record in missing:
                origin = Origin(msg.topic, msg.partition, record.offset)
                await deliver(handler(record.key, record.value, origin), origin, record.key, record.value)
                continuity.handled(tp, record.offset)
            # Faust never saw these offsets, so they would never count as acknowledged and its commit could stop
            # below them for good; registered as a gap they count once the record after them is acknowledged
            await app.consumer._add_gap(msg.tp, missing[0].offset, msg.offset - 1)  # no public accessor
        origin = Origin(msg.topic, msg.partition, msg.offset)
        await deliver(handler(msg.key, msg.value, origin), origin, msg.key, msg.value)
        continuity.handled(tp, msg.offset)

    def sweep(event: EventT, name: str) -> None:
        """Expire old entries of the current partition's tables, at most once per interval per partition."""
        partition = event.message.partition
        now = _now_ms()
        interval = int(settings.stream_sweep_interval_s * 1000)
        slot = (name, partition)
        if now - sweeps.last_ms.get(slot, 0) >= interval:
            table = tables[name]
            doomed: list[tuple[Any, Any]] = []
            size = 0
            for key, value in _partition_items(table, partition):
                size += 1
                if len(doomed) >= settings.stream_sweep_batch:
                    continue
                if name == "dedupe" and processor.dedupe_expired(value, now):
                    doomed.append((key, None))
                elif name == "payouts":
                    marker = processor.payout_closed(value, now)
                    if marker is not None:
                        doomed.append((key, marker))
            for key, marker in doomed:
                if marker is None:
                    table.pop(key, None)
                else:
                    table[key] = marker
            if doomed:
                metrics.expired.labels(name).inc(len(doomed))
            # full batch: come back on the next record rather than after a whole interval
            sweeps.last_ms[slot] = now if len(doomed) < settings.stream_sweep_batch else 0
            sweeps.sizes[(name, partition)] = size - sum(1 for _, m in doomed if m is None)
            metrics.table_size.labels(name).set(sum(v for (n, _), v in sweeps.sizes.items() if n == name))

    inputs = {events_topic.get_topic_name(): "events", bts_topic.get_topic_name(): "balance_transactions"}
    agent_inputs = {**inputs, payout_topic.get_topic_name(): "payouts"}
    watch = StallWatch(settings.stream_stall_timeout_s)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        for topic_name, label in inputs.items():
            metrics.assigned_partitions.labels(label).set(sum(1 for tp in assigned if tp.topic == topic_name))
        watch.assign((tp for tp in assigned if tp.topic in agent_inputs), time.monotonic())
        continuity.assign()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        watch.assign(watch.watched - revoked, time.monotonic())
        continuity.revoke((tp.topic, tp.partition) for tp in revoked)

    tails = TailWatch(settings.stream_tail_check_s)
    stall_timeout = settings.stream_stall_timeout_s
    interval = max(1.0, min(5.0, stall_timeout / 6)) if stall_timeout > 0 else 5.0

    @app.timer(interval=interval, name="partition_watch")
    async def partition_watch() -> None:
        """Every `interval`: a skipped tail is fetched again, a stalled partition ends the process.

        Nothing is handled during a table recovery, by design: it does not count.
        """
        if app.in_recovery or not watch.watched:
            watch.hold(time.monotonic())
            tails.reset()
            return
        # progress is what Faust committed: it moves only once a record's outputs are acknowledged, so a
        # producer that stopped delivering stalls a partition as surely as a fetcher that stopped fetching
        committed = app.consumer._committed_offset  # no public accessor; None also stands for offset 0
        for tp in watch.watched:
            offset = committed.get(tp)
            if offset is not None:
                watch.processed[tp] = offset - 1
        highwaters, starts = await _partition_offsets(app, set(watch.watched))
        now = time.monotonic()
        positions = {tp: continuity.next_offset(tp) if continuity.knows(tp) else (committed.get(tp) or starts.get(tp))
                     for tp in watch.watched}
        for tp, offset in tails.check(now, positions, highwaters):
            log.warning("continuity: records past the last one handled have waited with nothing handled; seeking "
                        "the consumer back to them", extra={"topic": tp[0], "partition": tp[1], "offset": offset,
                                                             "highwater": highwaters.get(tp)})
            metrics.child(metrics.rewinds, agent_inputs[tp[0]]).inc()
            await app.consumer.seek(TP(*tp), offset)
        if stall_timeout > 0:
            waiting = watch.check(now, highwaters, starts)
            for topic_name, label in agent_inputs.items():
                metrics.waiting_seconds.labels(label).set(
                    max((w.seconds for w in waiting if w.tp[0] == topic_name), default=0.0))
            _report_stalls(waiting, stall_timeout)

    events_seconds = metrics.child(metrics.processing_seconds, "events")
    bts_seconds = metrics.child(metrics.processing_seconds, "balance_transactions")
    payouts_seconds = metrics.child(metrics.processing_seconds, "payouts")

    def on_event(key: bytes | None, value: bytes | None, origin: Origin) -> Step:
        return processor.on_event(key, value, origin, _now_ms())

    def on_balance_transaction(key: bytes | None, value: bytes | None, origin: Origin) -> Step:
        return processor.on_balance_transaction(key, value, origin, _now_ms())

    def on_payout(key: bytes | None, value: bytes | None, origin: Origin) -> Step:
        return processor.on_payout_bytes(key, value, _now_ms(), origin)

    @app.agent(events_topic, concurrency=1, name="events")
    async def events_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await handle(event, on_event, "events")
            sweep(event, "dedupe")
            events_seconds.observe(time.perf_counter() - started)

    @app.agent(bts_topic, concurrency=1, name="balance")
    async def balance_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await handle(event, on_balance_transaction, "balance_transactions")
            bts_seconds.observe(time.perf_counter() - started)

    @app.agent(payout_topic, concurrency=1, name="payouts")
    async def payouts_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            await handle(event, on_payout, "payouts")
            sweep(event, "payouts")
            payouts_seconds.observe(time.perf_counter() - started)

    return StreamApp(app=app, processor=processor, settings=settings, watch=watch)
