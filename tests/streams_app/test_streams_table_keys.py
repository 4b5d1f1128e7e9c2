"""The worker's table keys cost their own size in memory, and are the bytes Faust's json codec always wrote.

Issue 18's soak: the stream worker grew ~20 MiB an hour. Faust keeps every table key it encodes in its store's key
index (an LRU of `table_key_index_size` keys per table), and orjson ≥ 3.12 hands back each encoding in a bytes
object that keeps its whole ~4 KiB write buffer. No broker needed: the test encodes keys with the worker's own
stores (as Faust does on every table write) and weighs what the key index holds with tracemalloc.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from faust.serializers import codecs
from prometheus_client import CollectorRegistry

from streams.app import TABLE_NAMES, build_app
from streams.metrics import StreamMetrics
from streams.settings import StreamSettings

KEYS = 1_000  # Faust's default table_key_index_size
TRICKY = ["ch_3MmlLrLkdIwHu7ix0snN0B15", "evt_1NG8Du2eZvKYlo2CUI79vXWy", "po_1OaFDbEcg9tTZuTgNYmX2V9R",
          'quote"and\\backslash', "tab\tnewline\n", "ünïcödé ключ 鍵", "\x00\x1f\x7f", "\u2028\u2029", ""]


def _stores(tmp_path: Path) -> dict[str, object]:
    stream_app = build_app(StreamSettings(stream_data_dir=tmp_path), metrics=StreamMetrics(CollectorRegistry()))
    return {name: stream_app.app.tables[name].data for name in TABLE_NAMES}


def test_a_key_held_in_the_key_index_costs_its_own_size_not_orjson_s_buffer(tmp_path: Path) -> None:
    for name, store in _stores(tmp_path).items():
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            held = [store._encode_key(f"ch_3MmlLrLkdIwHu7ix{n:010d}") for n in range(KEYS)]  # type: ignore[attr-defined]
            per_key = (tracemalloc.get_traced_memory()[0] - before) / KEYS
        finally:
            tracemalloc.stop()
        assert len(held) == KEYS
        assert per_key < 256, f"{name}: {per_key:.0f} B per 31-byte key held"


def test_keys_are_byte_identical_to_faust_s_json_codec_both_ways(tmp_path: Path) -> None:
    for name, store in _stores(tmp_path).items():
        for key in TRICKY:
            encoded = store._encode_key(key)  # type: ignore[attr-defined]
            assert encoded == codecs.dumps("json", key), (name, key)
            assert store._decode_key(encoded) == key, (name, key)  # type: ignore[attr-defined]
            assert store._decode_key(codecs.dumps("json", key)) == key  # type: ignore[attr-defined]
