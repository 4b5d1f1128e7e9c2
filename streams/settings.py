"""The stream worker's configuration (`PAYSYNC_STREAM_*`, composed with the shared Kafka, topic and mapping parts),
read once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from core.config import MappingSettings
from paysync.paths import state_dir
from paysync.settings import COMPOSED_CONFIG, KafkaConnection, PaysyncSettings, TopicSettings


TABLE_NAMES = ("versions", "bts", "payouts")  # the worker's RocksDB tables


class StreamSettings(PaysyncSettings):
    """Everything `paysync stream` needs; CLI flags override these values. The shared parts are fields, each reading
    its own variables: `kafka` (`KAFKA_BOOTSTRAP_SERVERS` …), `topics` (`PAYSYNC_TOPIC_*`), `mapping`
    (`PAYSYNC_MAPPING_*`, turned into the worker's `MappingConfig` by `core.config.mapping_config`)."""

    model_config = COMPOSED_CONFIG

    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")
    mapping: MappingSettings = Field(default_factory=MappingSettings, description="the mapping's product choices")

    stream_app_id: str = Field(
        default="paysync-streams",
        description="Faust app id = consumer group and changelog prefix; the topic prefix is prepended",
    )
    stream_data_dir: Path = Field(
        default_factory=lambda: state_dir() / "streams", description="where RocksDB tables live"
    )
    stream_store: str = Field(default="rocksdb://", description="table store URL: rocksdb:// (or memory:// in tests)")
    stream_commit_interval: float = Field(default=0.5, gt=0, description="seconds between offset commits")
    stream_commit_every: int = Field(
        default=10_000, ge=1, description="also commit after this many acknowledged input records"
    )
    stream_producer_linger_ms: float = Field(
        default=20.0, ge=0,
        description="producer batching delay: outputs are not awaited per record, so this costs latency only at low "
                    "load and saves the worker and broker many small requests (a backlog fills batches at once)",
    )
    stream_producer_request_timeout_s: float = Field(
        default=60.0, gt=0,
        description="an output the broker has not acknowledged in this time fails and stops the worker "
                    "before its next commit (it is restarted and replays); Faust's own default is 20 minutes",
    )
    stream_producer_batch_bytes: int = Field(default=262_144, ge=1024, description="producer batch size per partition")
    stream_producer_compression: str = Field(
        default="lz4", description="producer compression: lz4, zstd, snappy, gzip or '' for none"
    )
    stream_producer_drain_by_node: bool = Field(
        default=True,
        description="once any batch for a broker is ready, send every batch waiting for it in the same request, as "
                    "Kafka's Java producer does (aiokafka alone sends each partition's batch on its own linger)",
    )
    stream_fetch_max_wait_ms: int = Field(
        default=100, ge=0, le=1500,
        description="the broker holds the worker's fetch this long at most for stream_fetch_min_bytes to arrive: "
                    "latency added at low load only; Faust's own setting is 1500 with no minimum",
    )
    stream_fetch_min_bytes: int = Field(
        default=65_536, ge=1,
        description="the broker answers the worker's fetch once this much is waiting (1 = at the first record, "
                    "about one fetch per produce request of the webhook receiver)",
    )
    # RocksDB memory (issue 18's soak): Faust's defaults give each of the tables x partitions databases 3 write buffers
    # of 64 MiB and a 2 GiB block cache, which hold every write in memory for hours at 20 events/s. Bounded, the worker
    # holds at most tables x partitions x write buffers x size in memtables (4.5 MiB at 6 partitions) plus ONE block
    # cache for all its databases, in which every table file's index and filter blocks count too
    # (`streams.faust_internals.SharedCacheOptions`): a cache per database, with index and filters outside it, can
    # grow with the state and the partition count (the soak's growth was another: table keys, `ExactSizeJson`).
    # 128 KiB memtables fill within minutes at 20 events/s and cost a flush every few seconds per
    # partition at 1,000 events/s. Reads the cache misses are served from the OS page cache (RocksDB's wiki: a
    # smaller block cache does not mean more IO, the page cache keeps the compressed blocks).
    stream_rocksdb_write_buffer_bytes: int = Field(
        default=131_072, ge=65_536, description="RocksDB memtable size per table partition (flushed to disk when full)"
    )
    stream_rocksdb_write_buffers: int = Field(
        default=2, ge=2, description="RocksDB memtables per table partition (one filling while one flushes)"
    )
    stream_rocksdb_block_cache_bytes: int = Field(
        default=8_388_608, ge=1_048_576,
        description="the one RocksDB block cache of the worker's tables, all partitions (flushed entries read, and "
                    "every table file's index and filter blocks)",
    )
    stream_batch_max_records: int = Field(
        default=500, ge=1,
        description="an agent handles its records in batches of at most this many (fewer Faust steps per record); "
                    "a batch's records are acknowledged one by one once handled",
    )
    stream_batch_within_s: float = Field(
        default=0.02, gt=0,
        description="longest wait for a batch to fill: latency added at low load, none under a backlog",
    )
    stream_event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="event loop of the worker (uvloop: less per-record overhead)"
    )
    stream_payout_retention_hours: float = Field(
        default=72.0, gt=0, description="how long a reconciled payout keeps its member details"
    )
    stream_sweep_interval_s: float = Field(default=3600.0, gt=0, description="seconds between expiry sweeps per partition")
    stream_sweep_batch: int = Field(default=5000, ge=1, description="max payouts closed per sweep step")
    stream_session_timeout_s: float = Field(
        default=20.0, gt=0, description="consumer session timeout: how soon a dead worker's partitions move"
    )
    stream_stall_timeout_s: float = Field(
        default=120.0, ge=0,
        description="exit (status 75) when an input partition has records waiting and its committed offset has not "
                    "moved this long; 0 = off",
    )
    stream_tail_check_s: float = Field(
        default=15.0, gt=0,
        description="seek the consumer back when an input partition has had records past the last one handled and "
                    "nothing handled this long (records the consumer skipped with no later record to reveal them)",
    )
    stream_metrics_port: int | None = Field(default=None, description="prometheus_client /metrics port (127.0.0.1)")
    stream_web_port: int | None = Field(default=None, description="Faust web port; unset = Faust web off")
    stream_log_level: str = Field(default="INFO")

    @property
    def app_id(self) -> str:
        """The effective Faust app id: `topics.prefix + stream_app_id` (several pipelines per cluster)."""
        return f"{self.topics.prefix}{self.stream_app_id}"

    def rocksdb_options(self) -> dict[str, int]:
        """Options of every table's RocksDB databases (`faust.stores.rocksdb.RocksDBOptions` keywords), a new dict
        each call: Faust's store pops keys from the dict it is given."""
        return {
            "write_buffer_size": self.stream_rocksdb_write_buffer_bytes,
            "max_write_buffer_number": self.stream_rocksdb_write_buffers,
            "block_cache_size": self.stream_rocksdb_block_cache_bytes,
        }

    @property
    def changelog_topics(self) -> list[str]:
        """The tables' changelog topics, named as Faust names them (`<app id>-<table>-changelog`)."""
        return [f"{self.app_id}-{name}-changelog" for name in TABLE_NAMES]

    @property
    def payout_join_topic(self) -> str:
        """The internal topic that regroups balance transactions and payout events by payout id."""
        return f"{self.app_id}-payout-join"
