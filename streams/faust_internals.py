"""Every access of the stream worker to private parts of Faust, mode, aiokafka and Faust's RocksDB store: one place.

faust-streaming 0.15.3 (pinned) has no public accessor for these; each is commented with why it is needed and
what it stands for, so a Faust upgrade has one module to check.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import faust
import faust.streams as faust_streams
import rocksdict
from aiokafka.errors import IllegalStateError  # type: ignore[import-untyped]  # aiokafka ships no type hints
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.serializers import codecs
from faust.stores.rocksdb import RocksDBOptions
from faust.types import TP, EventT
from prometheus_client import REGISTRY, CollectorRegistry


class ExactSizeJson(codecs.json):
    """Faust's `json` codec, each encoding copied into a bytes object of its own size (the same bytes).

    orjson ≥ 3.12 (Faust's json backend here) returns a bytes object that keeps its whole write buffer, about
    4 KiB even for a 20-byte key (home-assistant/core#181513 measured 4,102 B for a 268 B result under 3.12, 1,070
    B under 3.11). Faust keeps each table key it encodes in its store's key index (an LRU of
    `table_key_index_size` keys per table), so every key held there cost 4 KiB instead of ~60 B.
    """

    def _dumps(self, s: Any) -> bytes:
        return bytes(memoryview(super()._dumps(s)))


EXACT_SIZE_JSON = "paysync-exact-json"
codecs.register(EXACT_SIZE_JSON, ExactSizeJson())


def exact_size_keys(table: Any) -> None:
    """Encode `table`'s keys with `ExactSizeJson` (bytes identical to Faust's json codec: stores and changelogs
    written before read the same). Call before the table's store or changelog topic is first used: Faust copies
    `Table.key_serializer` (set from `key_type`, no argument for it) into both when it creates them."""
    table.key_serializer = EXACT_SIZE_JSON


class SharedCacheOptions(RocksDBOptions):
    """Faust's rocksdict options (same memtables, bloom filter, index type) with one block cache for every database
    it opens, and each table file's index and filter blocks held in that cache.

    Faust builds a new cache for each database it opens, one per table and partition (24 at 6 partitions), and
    RocksDB keeps index and filter blocks outside the block cache by default, one set per table file: the worker's
    memory grew with its state. RocksDB's wiki ("Block Cache"): a Cache object can be shared by several instances in
    one process to control the overall capacity; "Memory usage in RocksDB": index and filter blocks count in it only
    with cache_index_and_filter_blocks. Level-0 files' ones stay pinned (read by every lookup).
    """

    shared_cache: rocksdict.Cache

    def as_options(self) -> rocksdict.Options:
        options: rocksdict.Options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.shared_cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


def share_block_cache(tables: Iterable[Any], capacity: int) -> None:
    """Open every database of the RocksDB stores of `tables` with one block cache of `capacity` bytes
    (`SharedCacheOptions`); other stores (memory:// in tests) are left as they are. Call before a store opens a
    partition's database (at assignment): Faust opens them with `Store.rocksdb_options`."""
    cache = rocksdict.Cache(capacity)
    for table in tables:
        store = table.data
        options = getattr(store, "rocksdb_options", None)
        if not isinstance(options, RocksDBOptions) or not options.use_rocksdict:
            continue
        shared = SharedCacheOptions()
        shared.__dict__.update(vars(options))  # the options Faust built from the table's `options=`
        shared.shared_cache = cache
        store.rocksdb_options = shared


def committed_offsets(app: faust.App) -> Mapping[TP, int | None]:
    """The offsets Faust last committed, per partition (`Consumer._committed_offset`; None also stands for 0).

    They move only once a record's outputs are acknowledged: the stall watch's measure of progress, and where
    the consumer began reading a partition in this assignment (the continuity guard).
    """
    offsets: Mapping[TP, int | None] = app.consumer._committed_offset  # type: ignore[attr-defined]
    return offsets


async def add_gap(app: faust.App, tp: TP, start: int, stop: int) -> None:
    """Register offsets `start`..`stop` (inclusive) as acknowledged once the record after them is (`Consumer._add_gap`).

    Records the continuity guard read from the broker itself never passed through Faust, so they would never
    count as acknowledged and Faust's commit could stop below them for good.
    """
    await app.consumer._add_gap(tp, start, stop)  # type: ignore[attr-defined]


async def seek(app: faust.App, tp: TP, offset: int) -> bool:
    """Make the consumer read `tp` again from `offset`: Faust's `Consumer.seek`, with aiokafka's part on its thread.

    Faust runs the aiokafka consumer in its own thread and event loop (`AIOKafkaConsumerThread`), but its
    `Consumer.seek` calls aiokafka's `seek` straight from the app's thread (`ThreadDelegateConsumer._seek`): the
    fetcher's `seek_to` then deletes from the dict of fetched records that `fetched_records` may be iterating on
    the consumer thread (a `KeyError` there ends the worker). Here the aiokafka seek is queued to the consumer
    thread (`call_thread`, as Faust does for its own calls) and runs as a step of that thread's loop, never
    inside a fetch's pass over the records. Faust's read offset (`Consumer._read_offset`, app-thread state) is
    set back afterwards, on the app's thread, as `Consumer.seek` does: else Faust drops the records read again
    as already read. False, and nothing sought, when `tp` is not assigned (any more: aiokafka's
    `IllegalStateError`).
    """
    consumer: Any = app.consumer
    thread = consumer._thread
    try:
        await thread.call_thread(thread.seek, tp, offset)
    except IllegalStateError:
        return False
    consumer._read_offset[tp] = offset if offset else None
    return True


def enter_event(event: EventT[Any]) -> None:
    """Make `event` Faust's current event in this task, as Faust's own stream iteration does per event.

    Tables pick the RocksDB partition they read and the changelog partition they write from it (`current_event()`).
    A batch's events pass through Faust's iteration in the stream's background task (`Stream.noack_take`), so the
    agent sets each one itself before handling it. Faust has no public setter: this sets
    `faust.streams._current_event` (a ContextVar of a weak reference) as `Stream._set_current_event` does.
    """
    faust_streams._current_event.set(weakref.ref(event))


def partition_items(table: Any, partition: int) -> Iterator[tuple[Any, Any]]:
    """(key, value) of one partition of a table: RocksDB keeps one database per partition.

    Faust's table iterates every partition's database; the expiry sweep reads only the current event's
    partition through the store's `_db_for_partition`, `_visible_items` and `_decode_key/_decode_value`.
    """
    store = table.data
    db_for = getattr(store, "_db_for_partition", None)
    if db_for is None:  # memory:// store: one dict for every partition (tests only)
        yield from list(table.items())
        return
    for raw_key, raw_value in store._visible_items(db_for(partition)):
        yield store._decode_key(raw_key), store._decode_value(raw_value)


class TableView(MutableMapping[str, Any]):
    """A Faust table for the processor: reads go straight to the store (`table.data`: one lookup in the current
    event's partition instead of Faust's contains-then-get), writes and deletes go through the table (changelog)."""

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


def whole_node_drains(accumulator: Any) -> None:
    """Make aiokafka's `accumulator` send every batch waiting for a broker once any batch for it is ready.

    aiokafka's `MessageAccumulator.drain_by_nodes` takes a partition's batch only when that batch's own linger has
    run out (or it is full), so the stream worker's outputs and changelog writes, spread over every partition of
    five topics, left in as many produce requests as there are linger deadlines: about 0.4 per input record at
    100 events/s (`bench/broker_requests.py --by-client`). Kafka's Java producer drains by node instead:
    `RecordAccumulator.ready` names the nodes with a sendable batch, and `drain` "drains all the data for the given
    nodes", a batch from each of their partitions, into one request per node (apache/kafka, clients/.../producer/
    internals/RecordAccumulator.java). Here the waiting batches of a node that has a ready one have their linger
    (`MessageBatch._linger_time`) cut to zero just before aiokafka drains.
    Muted partitions and nodes with a request in flight are left as aiokafka leaves them.
    """
    drain = accumulator.drain_by_nodes
    cluster = accumulator._cluster

    def drain_by_nodes(ignore_nodes: Any, muted_partitions: Any = frozenset()) -> Any:
        heads: list[tuple[int, Any]] = []
        ready: set[int] = set()
        for tp, batches in accumulator._batches.items():
            if not batches or tp in muted_partitions:
                continue
            leader = cluster.leader_for_partition(tp)
            if leader is None or leader == -1 or (ignore_nodes and leader in ignore_nodes):
                continue
            heads.append((leader, batches[0]))
            if batches[0].remaining_linger() is None:
                ready.add(leader)
        for leader, batch in heads:
            if leader in ready:
                batch._linger_time = 0
        return drain(ignore_nodes, muted_partitions)

    accumulator.drain_by_nodes = drain_by_nodes


def drain_producer_by_node(app: faust.App) -> None:
    """Give the aiokafka producer Faust creates for `app` whole-node drains (`whole_node_drains`).

    Faust builds its `AIOKafkaProducer` when its producer service starts (`Producer._new_producer`); the wrapper set
    on this app's producer instance reaches that producer's accumulator (`_message_accumulator`) before any send.
    """
    producer: Any = app.producer
    new_producer = producer._new_producer

    def new_draining_by_node(*args: Any, **kwargs: Any) -> Any:
        created = new_producer(*args, **kwargs)
        whole_node_drains(created._message_accumulator)
        return created

    producer._new_producer = new_draining_by_node


def wait_on_broker_for_fetches(app: faust.App, min_bytes: int, max_wait_ms: int) -> None:
    """Create `app`'s aiokafka consumer with `fetch_min_bytes=min_bytes` and `fetch_max_wait_ms=max_wait_ms`.

    Faust passes aiokafka `fetch_max_wait_ms=1500` and no `fetch_min_bytes` (aiokafka's default: 1 byte), so the
    broker answers the worker's fetch as soon as any record arrives: about one fetch per produce request of the
    webhook receiver. With a minimum the broker holds the fetch until `min_bytes` arrived or `max_wait_ms` passed
    (Kafka's `fetch.min.bytes` / `fetch.max.wait.ms`). The consumer is built on Faust's consumer thread at start
    (`AIOKafkaConsumerThread._create_worker_consumer`); the wrapper set on this app's thread sets aiokafka's two
    values (`AIOKafkaConsumer._fetch_min_bytes`, `_fetch_max_wait_ms`, read when its fetcher starts) before it
    starts.
    """
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    create = thread._create_worker_consumer

    def create_waiting_on_broker(*args: Any, **kwargs: Any) -> Any:
        consumer = create(*args, **kwargs)
        consumer._fetch_min_bytes = min_bytes
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    thread._create_worker_consumer = create_waiting_on_broker


class LeanPrometheusMonitor(PrometheusMonitor):
    """Faust's Prometheus monitor (same `<prefix>_*` metrics) with its per-record label lookups cached.

    It overrides the monitor's hooks and reads its private `_metrics` and `_stream_label` (Faust's own hooks look
    every label up again for each record).
    """

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
