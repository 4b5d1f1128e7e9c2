"""The Faust app: topics, RocksDB tables and three agents around `streams.processor.Processor`.

`build_app(settings)` returns a `StreamApp` (the Faust app plus the processor); nothing is created at
import time. Agents run with concurrency 1 under at-least-once; each input record's outputs are
produced and acknowledged by the broker before its table writes are applied (see `processor`).

Agents:
- `events`:   `stripe.events` → upserts / dead letters / payout headers.
- `balance`:  `stripe.balance_transactions` → upserts / dead letters / payout members.
- `payouts`:  `<app id>-payout-join` (internal, keyed by payout id) → payout reconciliations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import EventT

from paysync.codec import AvroCodec, CodecError
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.metrics import StreamMetrics
from streams.outputs import Origin, Output, OutputEncoder, Target, dead_letter_output
from streams.ports import Mapper, RealMapper
from streams.processor import Processor, Retention, Step, Tables
from streams.settings import StreamSettings

log = logging.getLogger("paysync.streams")

TABLE_NAMES = ("dedupe", "versions", "bts", "payouts")


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
        f"{settings.app_id}-payout-join", partitions=partitions, internal=True,
        key_serializer="raw", value_serializer="json",
    )
    tables = {
        name: app.Table(name, default=None, partitions=partitions, key_type=str)
        for name in TABLE_NAMES
    }
    processor = Processor(
        mapper or RealMapper(settings), codec, metrics, Tables(**tables),
        Retention(
            dedupe_ms=int(settings.stream_dedupe_retention_days * 86_400_000),
            payout_ms=int(settings.stream_payout_retention_hours * 3_600_000),
        ),
    )
    sweeps = _SweepState()

    async def deliver(step: Step, event: EventT) -> None:
        """Produce a step's outputs, wait for the broker's acknowledgements, then apply its table writes."""
        encoded: list[tuple[Output, bytes | dict[str, Any]]] = []
        try:
            for out in step.outputs:
                encoded.append((out, out.value if out.target is Target.PAYOUT else encoder.encode(out)))
        except CodecError as exc:  # a mapping produced a record that does not fit the schema: a bug, dead-letter
            msg = event.message
            dead = dead_letter_output(Origin(msg.topic, msg.partition, msg.offset), msg.key, msg.value,
                                      "internal", exc.code, exc.message)
            metrics.dead_lettered.labels("output", exc.code).inc()
            step = Step([dead], [])
            encoded = [(dead, encoder.encode(dead))]
        futures = []
        for out, value in encoded:
            topic = {Target.UPSERT: upserts_topic, Target.DEAD_LETTER: dlq_topic, Target.PAYOUT: payout_topic}[
                out.target]
            futures.append(await topic.send(key=out.key, value=value))
        if futures:
            await asyncio.gather(*futures)
        processor.apply(step)

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

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        for topic_name, label in inputs.items():
            metrics.assigned_partitions.labels(label).set(sum(1 for tp in assigned if tp.topic == topic_name))

    def origin(event: EventT) -> Origin:
        return Origin(event.message.topic, event.message.partition, event.message.offset)

    @app.agent(events_topic, concurrency=1, name="events")
    async def events_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            step = processor.on_event(event.message.key, event.message.value, origin(event), _now_ms())
            await deliver(step, event)
            sweep(event, "dedupe")
            metrics.processing_seconds.labels("events").observe(time.perf_counter() - started)

    @app.agent(bts_topic, concurrency=1, name="balance")
    async def balance_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            step = processor.on_balance_transaction(event.message.key, event.message.value, origin(event), _now_ms())
            await deliver(step, event)
            metrics.processing_seconds.labels("balance_transactions").observe(time.perf_counter() - started)

    @app.agent(payout_topic, concurrency=1, name="payouts")
    async def payouts_agent(stream: faust.StreamT) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            step = processor.on_payout_message(event.value, _now_ms())
            await deliver(step, event)
            sweep(event, "payouts")
            metrics.processing_seconds.labels("payouts").observe(time.perf_counter() - started)

    return StreamApp(app=app, processor=processor, settings=settings)
