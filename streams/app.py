"""The Faust app: topics, RocksDB tables, three agents and a timer wired around `streams.processor.Processor`.

Wiring only: delivery (`streams.delivery`), the continuity guard (`streams.intake`), the partition watch
(`streams.partition_watch`), the expiry sweep (`streams.expiry`); Faust's private parts in `streams.faust_internals`.

`build_app(settings)` returns a `StreamApp` (the Faust app plus the processor); nothing is created at
import time. Agents run with concurrency 1 under at-least-once and take their records in batches (Faust's
`noack_take`: `stream_batch_max_records`, `stream_batch_within_s`), handled one by one in order; a record
is acknowledged once it is handled. Each input record's outputs are handed to the producer and its table
writes applied at once, without waiting for the broker's acknowledgement:
- Faust commits an input offset only after `app.producer.flush()` has waited for everything produced so
  far, so every output of a committed record is durable;
- aiokafka's flush waits for failed batches too, without raising: a delivery that fails after the
  producer's retries therefore stops the process at once (`streams.delivery.fail_stop`), before any later commit;
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
which stops the process through `streams.delivery.fail_stop` as well.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import TP, EventT

from paysync.codec import AvroCodec
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.delivery import Delivery
from streams.expiry import Sweeper
from streams.faust_internals import (
    TableView, drain_producer_by_node, enter_event, exact_size_keys, setup_faust_metrics, share_block_cache,
    wait_on_broker_for_fetches,
)
from streams.intake import EXIT_STALLED, Handler, Intake
from streams.metrics import StreamMetrics
from streams.outputs import Origin, OutputEncoder, Target
from streams.partition_watch import PartitionWatch
from streams.ports import Mapper, RealMapper
from streams.processor import Processor, Retention, Step, Tables
from streams.range_reader import RangeReader
from streams.settings import TABLE_NAMES, StreamSettings
from streams.watchdog import StallWatch

__all__ = ["EXIT_STALLED", "TABLE_NAMES", "StreamApp", "build_app", "faust_app", "setup_faust_metrics"]

Agent = Callable[["faust.StreamT[Any]"], Any]


def _now_ms() -> int:
    return int(time.time() * 1000)


def faust_app(settings: StreamSettings) -> faust.App:
    """A Faust app configured for paysync: at-least-once, earliest, small commit interval, web off unless a port."""
    conf: dict[str, Any] = {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka.bootstrap_servers.split(",") if h.strip()],
        "store": settings.stream_store,
        "datadir": str(settings.stream_data_dir),
        "processing_guarantee": "at_least_once",
        "topic_partitions": settings.topics.partitions,
        "topic_replication_factor": settings.topics.replication_factor or 1,
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
    kafka = settings.kafka
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        conf["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username or "", password=password, mechanism=kafka.sasl_mechanism,
        )
    return faust.App(settings.app_id, **conf)


@dataclass
class StreamApp:
    """The Faust app and the processor its agents drive."""

    app: faust.App
    processor: Processor
    settings: StreamSettings
    watch: StallWatch


def _processor(settings: StreamSettings, tables: dict[str, Any], mapper: Mapper | None, codec: AvroCodec,
               metrics: StreamMetrics) -> Processor:
    retention = Retention(payout_ms=int(settings.stream_payout_retention_hours * 3_600_000))
    views = Tables(**{name: TableView(table) for name, table in tables.items()})
    return Processor(mapper or RealMapper(settings.mapping), codec, metrics, views, retention)


class BatchClock:
    """The wall clock as an agent's batch sees it: read once per batch, every record of the batch handled at it."""

    def __init__(self, read: Callable[[], int] = _now_ms) -> None:
        self._read = read
        self.now_ms = read()

    def tick(self) -> None:
        """Read the clock (at the start of a batch)."""
        self.now_ms = self._read()


@dataclass(frozen=True)
class Batching:
    """How an agent gathers its records: at most `max_records`, waiting at most `within_s` for a batch to fill."""

    max_records: int
    within_s: float


def _agent(intake: Intake, handler: Handler, input_name: str, metrics: StreamMetrics, batching: Batching,
           clock: BatchClock, backlog: Callable[[], bool], after: Callable[[int], None] | None = None) -> Agent:
    """An agent body: records in batches, each through the intake in order and acknowledged once it is handled.

    Faust's `noack_take` acknowledges nothing itself: a record is acknowledged only after `intake.handle` has handed
    its outputs to the producer and applied its table writes, so Faust's commit (which also waits for the producer's
    flush) never passes a record that was not handled; a failure mid-batch leaves the rest unacknowledged (replayed).
    Per batch: one clock read, `after(partition)` (the sweep) once per partition with that partition's last record
    as the current event, and one observation of the mean time per record. When `backlog()` says the table writes
    waiting for the producer pile up, the agent lets the event loop run once (Faust's buffer task sends them all):
    else Faust's conductor, past 100 waiting, flushes them one wait at a time before it passes on the next record.
    """
    seconds = metrics.child(metrics.processing_seconds, input_name)

    async def agent(stream: "faust.StreamT[Any]") -> None:
        batches = cast("faust.Stream[Any]", stream).noack_take(batching.max_records, batching.within_s)
        async for batch in batches:
            started = time.perf_counter()
            clock.tick()
            last: dict[int, EventT[Any]] = {}
            for event in cast("list[EventT[Any]]", batch):
                enter_event(event)
                await intake.handle(event, handler, input_name)
                await stream.ack(event)
                last[event.message.partition] = event
                if backlog():
                    await asyncio.sleep(0)
            if after is not None:
                for partition, event in last.items():
                    enter_event(event)
                    after(partition)
            seconds.observe((time.perf_counter() - started) / len(batch))

    return agent


def build_app(
    settings: StreamSettings, mapper: Mapper | None = None, metrics: StreamMetrics | None = None,
    codec: AvroCodec | None = None,
) -> StreamApp:
    """Wire topics, tables and agents; `mapper`/`metrics`/`codec` are injectable for tests."""
    app = faust_app(settings)
    if settings.stream_producer_drain_by_node:
        drain_producer_by_node(app)
    wait_on_broker_for_fetches(app, settings.stream_fetch_min_bytes, settings.stream_fetch_max_wait_ms)
    prefix, partitions = settings.topics.prefix, settings.topics.partitions
    codec = codec or AvroCodec(settings.kafka.schema_registry_url)
    metrics = metrics or StreamMetrics()
    events_topic = app.topic(STRIPE_EVENTS.full_name(prefix), key_serializer="raw", value_serializer="raw")
    bts_topic = app.topic(STRIPE_BALANCE_TRANSACTIONS.full_name(prefix), key_serializer="raw", value_serializer="raw")
    upserts_topic = app.topic(SALESFORCE_UPSERTS.full_name(prefix), key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(DEAD_LETTERS.full_name(prefix), key_serializer="raw", value_serializer="raw")
    payout_topic = app.topic(settings.payout_join_topic, partitions=partitions, internal=True,
                             key_serializer="raw", value_serializer="raw")
    tables = {name: app.Table(name, default=None, partitions=partitions, key_type=str,
                              options=settings.rocksdb_options()) for name in TABLE_NAMES}
    for table in tables.values():
        exact_size_keys(table)
    share_block_cache(tables.values(), settings.stream_rocksdb_block_cache_bytes)
    processor = _processor(settings, tables, mapper, codec, metrics)
    topic_names = {Target.UPSERT: upserts_topic.get_topic_name(), Target.DEAD_LETTER: dlq_topic.get_topic_name(),
                   Target.PAYOUT: payout_topic.get_topic_name()}
    delivery = Delivery(app.producer.send, topic_names, OutputEncoder(codec), processor.apply, metrics)
    reader = RangeReader(settings.kafka.confluent_config(), group_id=f"{settings.app_id}-range-reader")
    intake = Intake(app, reader, delivery, metrics)
    sweeper = Sweeper(tables, processor, metrics, settings.stream_sweep_interval_s, settings.stream_sweep_batch,
                      _now_ms)
    inputs = {events_topic.get_topic_name(): "events", bts_topic.get_topic_name(): "balance_transactions"}
    agent_inputs = {**inputs, payout_topic.get_topic_name(): "payouts"}
    watch = PartitionWatch(app, intake.continuity, metrics, agent_inputs, settings.stream_stall_timeout_s,
                           settings.stream_tail_check_s)

    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        for topic_name, label in inputs.items():
            metrics.assigned_partitions.labels(label).set(sum(1 for tp in assigned if tp.topic == topic_name))
        watch.assigned(assigned)
        intake.continuity.assign()

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        watch.revoked(revoked)
        intake.continuity.revoke((tp.topic, tp.partition) for tp in revoked)

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]  # mode's signal types want `signal=`
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.timer(interval=watch.interval_s, name="partition_watch")(watch.tick)

    batching = Batching(settings.stream_batch_max_records, settings.stream_batch_within_s)
    buffer = app.producer.buffer  # table writes waiting to be produced (Faust's ProducerBuffer)

    def backlog() -> bool:
        return buffer.size >= buffer.max_messages // 2

    clocks = {name: BatchClock() for name in ("events", "balance", "payouts")}

    def on_event(key: bytes | None, value: bytes | None, origin: Origin) -> Step:
        return processor.on_event(key, value, origin, clocks["events"].now_ms)

    def on_balance_transaction(key: bytes | None, value: bytes | None, origin: Origin) -> Step:
        return processor.on_balance_transaction(key, value, origin, clocks["balance"].now_ms)

    def on_payout(key: bytes | None, value: bytes | None, origin: Origin) -> Step:
        return processor.on_payout_bytes(key, value, clocks["payouts"].now_ms, origin)

    app.agent(events_topic, concurrency=1, name="events")(
        _agent(intake, on_event, "events", metrics, batching, clocks["events"], backlog))
    app.agent(bts_topic, concurrency=1, name="balance")(
        _agent(intake, on_balance_transaction, "balance_transactions", metrics, batching, clocks["balance"],
               backlog))
    app.agent(payout_topic, concurrency=1, name="payouts")(
        _agent(intake, on_payout, "payouts", metrics, batching, clocks["payouts"], backlog,
               sweeper.sweep))
    return StreamApp(app=app, processor=processor, settings=settings, watch=watch.watch)
