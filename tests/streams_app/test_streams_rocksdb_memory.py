"""The worker's RocksDB tables keep bounded memory (issue 18's soak: the stream worker grew 40 MiB an hour).

Faust's defaults give every table partition 3 memtables of 64 MiB and a 2 GiB block cache of its own, so entries
stay in memory until 64 MiB of them have been written to that one partition, and index and filter blocks stay outside
any cache; the worker bounds the memtables and gives all its databases one block cache that holds index and filters
too. No broker needed: the tests open partitions' databases the way Faust does and write into them directly.
"""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry

from streams.app import TABLE_NAMES, build_app
from streams.metrics import StreamMetrics
from streams.settings import StreamSettings

MEMTABLE_BYTES = 262_144


def test_each_table_partition_flushes_its_entries_to_disk_past_the_memtable_bound(tmp_path: Path) -> None:
    settings = StreamSettings(stream_data_dir=tmp_path, stream_rocksdb_write_buffer_bytes=MEMTABLE_BYTES,
                              stream_rocksdb_block_cache_bytes=1_048_576)
    stream_app = build_app(settings, metrics=StreamMetrics(CollectorRegistry()))
    for name in TABLE_NAMES:
        store = stream_app.app.tables[name].data
        db = store._db_for_partition(0)  # opened with the store's options, as Faust opens it for an assigned partition
        entry_bytes = 0
        for n in range(20_000):  # ≈ 1 MiB of dedupe-like entries: four memtables' worth
            key, value = f"evt_{n:020d}".encode(), json.dumps([1_700_000_000_000 + n, 0, n]).encode()
            db[key] = value
            entry_bytes += len(key) + len(value)
        in_memory = db.property_int_value("rocksdb.cur-size-all-mem-tables")
        on_disk = db.property_int_value("rocksdb.total-sst-files-size")
        assert entry_bytes > 3 * MEMTABLE_BYTES
        assert in_memory <= settings.stream_rocksdb_write_buffers * MEMTABLE_BYTES * 1.25, (name, in_memory)
        assert on_disk > 0, name
        assert db[b"evt_00000000000000000000"] == json.dumps([1_700_000_000_000, 0, 0]).encode()


def test_every_table_partition_reads_through_one_block_cache_that_holds_index_and_filters(tmp_path: Path) -> None:
    cache_bytes = 1_048_576
    settings = StreamSettings(stream_data_dir=tmp_path, stream_rocksdb_write_buffer_bytes=MEMTABLE_BYTES,
                              stream_rocksdb_block_cache_bytes=cache_bytes)
    stream_app = build_app(settings, metrics=StreamMetrics(CollectorRegistry()))
    dbs = [stream_app.app.tables[name].data._db_for_partition(p) for name in TABLE_NAMES for p in (0, 1)]
    for d, db in enumerate(dbs):  # 8 databases of ~1.3 MiB each, flushed to table files, then all read back
        for n in range(12_000):
            db[f"obj_{d}_{n:012d}".encode()] = json.dumps([1_700_000_000_000 + n, d, n, "x" * 60]).encode()
        db.flush()
    for d, db in enumerate(dbs):
        assert all(db[f"obj_{d}_{n:012d}".encode()] is not None for n in range(0, 12_000, 7))
    usage = {db.property_int_value("rocksdb.block-cache-usage") for db in dbs}
    capacity = {db.property_int_value("rocksdb.block-cache-capacity") for db in dbs}
    assert capacity == {cache_bytes} and len(usage) == 1, (capacity, usage)  # one cache, seen from every database
    assert 0 < usage.pop() <= cache_bytes * 1.1  # 8 x 1.3 MiB read through it, held to its capacity
    outside = sum(db.property_int_value("rocksdb.estimate-table-readers-mem") for db in dbs)
    assert outside < 128 * 1024, outside  # another ~115 KiB of index and filter blocks when they sit beside the cache


def test_the_defaults_bound_the_worker_far_below_faust_s() -> None:
    settings = StreamSettings()
    options = settings.rocksdb_options()
    memtables = len(TABLE_NAMES) * settings.topics.partitions * options["max_write_buffer_number"] * \
        options["write_buffer_size"]
    assert memtables + options["block_cache_size"] <= 16 * 2**20  # Faust's: 3 x 64 MiB + a 2 GiB cache per partition
    assert StreamSettings().rocksdb_options() is not StreamSettings().rocksdb_options()
