"""`paysync stream` on the real broker: a worker SIGKILLed mid-stream and restarted gives the same final output."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from streams_app_gen import Rec, fold, redeliver
from streams_app_harness import StreamWorker, diff_states, start_worker, produce, setup_topics, upsert_reader, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]



@pytest.mark.parametrize("restart_dir", ["same", "fresh"])
def test_a_worker_killed_mid_stream_resumes_with_the_same_final_output(
    restart_dir: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, stream: list[Rec], expected: dict[Any, Any],
    workers: list[StreamWorker],
) -> None:
    setup_topics(kafka_bootstrap, topic_prefix)
    copies = redeliver(stream, times=2, seed=5)
    half = len(copies) // 2
    app_id = f"t-{uuid.uuid4().hex[:6]}"
    produce(kafka_bootstrap, topic_prefix, copies[:half])
    first = start_worker(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / "w")
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    assert wait_until(reader, lambda recs: len(recs) >= 150, timeout=90), "the worker produced nothing"
    first.kill()
    produce(kafka_bootstrap, topic_prefix, copies[half:])
    # "same": resume from the local RocksDB tables; "fresh": a lost disk, tables rebuilt from the changelogs
    second = start_worker(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / ("w" if restart_dir == "same" else "w2"))
    ok = wait_until(reader, lambda recs: fold(recs) == expected, timeout=120)
    assert ok, diff_states(fold(reader.records()), expected)
    reader.close()
    # the second half repeats events of the first: only remembered (restored) ids can be dropped as duplicates
    assert second.metric("paysync_stream_duplicates_dropped_total") > 0
    assert second.metric("paysync_stream_table_keys") > 0  # the expiry sweep read the restored tables
