"""`paysync stream` on the real broker: a worker SIGKILLed mid-stream and restarted gives the same final output."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from paysync.codec import AvroCodec
from streams.metrics import StreamMetrics
from streams.ports import RealMapper
from streams.processor import Processor, Tables
from streams.settings import StreamSettings
from streams_app_gen import FIXTURES3, Rec, fold, generate, redeliver, run_in_process
from streams_app_harness import StreamWorker, produce, setup_topics, upsert_reader, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]

if not FIXTURES3.exists():
    pytest.skip("../shared/fixtures/stripe is not present", allow_module_level=True)


@pytest.fixture(scope="module")
def stream() -> list[Rec]:
    return generate(seed=7, customers=30, charges=150, payouts=5)


@pytest.fixture(scope="module")
def expected(stream: list[Rec]) -> dict[tuple[str, str], dict[str, Any]]:
    """Final state of delivering the stream once, in order (the processor with in-memory tables)."""
    proc = Processor(RealMapper(StreamSettings()), AvroCodec(), StreamMetrics(CollectorRegistry()), Tables())
    state = fold(run_in_process(stream, proc))
    payouts = [v for k, v in state.items() if k[0] == "Stripe_Payout__c"]
    assert len(payouts) == 5
    assert all(p["fields"]["Reconciliation_Status__c"] == "Reconciled" for p in payouts)
    return state


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[StreamWorker]]:
    started: list[StreamWorker] = []
    yield started
    for w in started:
        w.stop()


def _start(workers: list[StreamWorker], bootstrap: str, prefix: str, app_id: str, data_dir: Path) -> StreamWorker:
    w = StreamWorker(bootstrap, prefix, app_id, data_dir, data_dir.parent / f"{data_dir.name}.log")
    workers.append(w)
    return w


def _diff(actual: dict[Any, Any], expected: dict[Any, Any]) -> str:
    missing = [k for k in expected if k not in actual][:5]
    extra = [k for k in actual if k not in expected][:5]
    wrong = [(k, actual[k], expected[k]) for k in expected if k in actual and actual[k] != expected[k]][:2]
    return f"missing {missing} extra {extra} wrong {wrong}"


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
    first = _start(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / "w")
    reader = upsert_reader(kafka_bootstrap, topic_prefix)
    assert wait_until(reader, lambda recs: len(recs) >= 150, timeout=90), "the worker produced nothing"
    first.kill()
    produce(kafka_bootstrap, topic_prefix, copies[half:])
    # "same": resume from the local RocksDB tables; "fresh": a lost disk, tables rebuilt from the changelogs
    second = _start(workers, kafka_bootstrap, topic_prefix, app_id, tmp_path / ("w" if restart_dir == "same" else "w2"))
    ok = wait_until(reader, lambda recs: fold(recs) == expected, timeout=120)
    assert ok, _diff(fold(reader.records()), expected)
    reader.close()
    # the second half repeats events of the first: only remembered (restored) ids can be dropped as duplicates
    assert second.metric("paysync_stream_duplicates_dropped_total") > 0
    assert second.metric("paysync_stream_table_keys") > 0  # the expiry sweep read the restored tables
