"""Throughput of one `paysync stream` worker on a real broker, and its table disk size per million events.

Usage: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 .venv/bin/python bench/streams_throughput.py [--charges 3000]
Prints: records/s in-process (no Kafka), records/s through one worker (backlog drained from a topic),
the worker's CPU time per input record (steadier than wall-clock on a shared machine),
and RocksDB bytes per input event (extrapolated to a million). Reuses the tests' stream generator.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "streams_app"))

from prometheus_client import CollectorRegistry  # noqa: E402

from paysync.codec import AvroCodec  # noqa: E402
from streams.metrics import StreamMetrics  # noqa: E402
from streams.ports import RealMapper  # noqa: E402
from streams.processor import Processor, Tables  # noqa: E402
from streams.settings import StreamSettings  # noqa: E402
from streams_app_gen import generate, run_in_process  # noqa: E402
from streams_app_harness import StreamWorker, produce, setup_topics, wait_for  # noqa: E402


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=3000)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    stream = generate(seed=42, customers=max(10, args.charges // 5), charges=args.charges,
                      payouts=max(1, args.charges // 100))
    n_events = sum(1 for r in stream if r.kind == "events")
    print(f"stream: {len(stream)} records ({n_events} events, {len(stream) - n_events} balance transactions)")

    proc = Processor(RealMapper(StreamSettings().mapping), AvroCodec(), StreamMetrics(CollectorRegistry()), Tables())
    started = time.perf_counter()
    run_in_process(stream, proc)
    took = time.perf_counter() - started
    print(f"in-process (dict tables, no Kafka): {len(stream) / took:,.0f} records/s")

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    setup_topics(bootstrap, prefix)
    produce(bootstrap, prefix, stream)
    tmp = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    worker = StreamWorker(bootstrap, prefix, "bench", tmp / "data", tmp / "worker.log")
    try:
        input_total = "paysync_stream_processed_total"
        assert wait_for(lambda: worker.metric(input_total) > 0, timeout=120), "worker did not start"
        first = time.perf_counter()
        first_count = worker.metric(input_total)
        first_cpu = _cpu_seconds(worker.proc.pid)
        headers = sum(1 for r in stream if r.kind == "events" and r.value["object_type"] == "payout")
        members = sum(1 for r in stream if r.kind == "bts" and r.value["payout_id"] and r.value["type"] != "payout")
        target = len(stream) + headers + members
        idle = {"count": -1.0, "since": time.perf_counter()}

        def finished() -> bool:
            count = worker.metric(input_total)
            if count != idle["count"]:
                idle.update(count=count, since=time.perf_counter())
            return count >= target or time.perf_counter() - idle["since"] > 20

        wait_for(finished, timeout=1800)
        elapsed = time.perf_counter() - first
        done = worker.metric(input_total) - first_count
        cpu = _cpu_seconds(worker.proc.pid) - first_cpu
        print(f"one worker (RocksDB tables, acks=all): "
              f"{done / elapsed:,.0f} input records/s ({done:.0f} in {elapsed:.1f} s, incl. payout-join messages)")
        if cpu > 0:
            print(f"worker CPU: {cpu / max(1.0, done) * 1e6:,.0f} µs per input record "
                  f"(= {done / cpu:,.0f} records per CPU-second; wall-clock figures are noisy on a shared machine)")
        print(f"processing p50-ish: {worker.metric('paysync_stream_processing_seconds_sum') / max(1.0, worker.metric('paysync_stream_processing_seconds_count')) * 1000:.2f} ms/record")
    finally:
        worker.stop()
    size = _du(tmp / "data")
    print(f"table disk: {size / 1e6:.1f} MB for {n_events} events -> {size / n_events * 1e6 / 1e9:.2f} GB per million events "
          "(RocksDB before compaction; versions + balance transactions + payouts)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
