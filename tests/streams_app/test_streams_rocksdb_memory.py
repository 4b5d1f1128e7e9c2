"""The worker's RocksDB tables keep bounded memory (issue 18's soak: the stream worker grew 40 MiB an hour).

Faust's defaults give every table partition 3 memtables of 64 MiB and a 2 GiB block cache, so entries stay in
memory until 64 MiB of them have been written to that one partition; the worker's settings bound both. No broker
needed: the test opens one partition's database the way Faust does and writes into it directly.
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


def test_the_defaults_bound_every_table_partition_below_faust_s() -> None:
    options = StreamSettings().rocksdb_options()
    worst_case = options["max_write_buffer_number"] * options["write_buffer_size"] + options["block_cache_size"]
    assert worst_case <= 2 * 2**20  # Faust's defaults: 3 x 64 MiB memtables + a 2 GiB cache per partition
    assert StreamSettings().rocksdb_options() is not StreamSettings().rocksdb_options()
