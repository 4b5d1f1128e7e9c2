"""Memory of `paysync stream` workers per record handled: one worker per variant (an environment, e.g. an allocator
or a malloc tunable), all fed the same steady stream at the same pace on the dev broker, side by side.

Usage: KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/stream_memory.py [--rate 150] [--minutes 20]
           [--variant NAME:K=V,K=V ...]   (default variants: glibc, glibc with MALLOC_ARENA_MAX=2, jemalloc)
Prints, per variant, RSS after the warm-up and at the end, and the slope of RSS over records handled in the second
half of the run (MiB per 100,000 input records: least squares), the figure the soak's "flat" verdict depends on.
The feed reuses the tests' stream generator (unique objects throughout, as in production traffic).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "streams_app"))

from bench_common import proc_rss_mib, say  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from paysync.codec import AvroCodec  # noqa: E402
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS  # noqa: E402
from streams_app_gen import Rec, encode, generate  # noqa: E402
from streams_app_harness import StreamWorker, setup_topics, wait_for  # noqa: E402

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
PROCESSED = "paysync_stream_processed_total"
DEFAULT_VARIANTS = ["glibc:", "arena2:MALLOC_ARENA_MAX=2", f"jemalloc:LD_PRELOAD={JEMALLOC}"]


@dataclass
class Run:
    """One variant's worker and what was sampled of it: (records handled, RSS MiB)."""

    name: str
    env: dict[str, str]
    prefix: str
    worker: StreamWorker | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`NAME:K=V,K=V` -> (NAME, {K: V})."""
    name, _, pairs = text.partition(":")
    env = dict(p.split("=", 1) for p in pairs.split(",") if p)
    return name, env


def slope_per_100k(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS (MiB) over records, per 100,000 records; 0 with fewer than 3 points."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var * 100_000


def feed(bootstrap: str, prefixes: list[str], stream: list[Rec], rate: float, stop: threading.Event) -> None:
    """Produce `stream` to every prefix's input topics at `rate` records/s each, in 0.1 s steps."""
    codec = AvroCodec()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    values = [(r.kind, r.key.encode(), encode(codec, r)) for r in stream]
    start = time.monotonic()
    sent = 0
    while sent < len(values) and not stop.is_set():
        due = min(len(values), int((time.monotonic() - start) * rate))
        for kind, key, value in values[sent:due]:
            for prefix in prefixes:
                topic = (STRIPE_EVENTS if kind == "events" else STRIPE_BALANCE_TRANSACTIONS).full_name(prefix)
                producer.produce(topic, key=key, value=value)
        sent = due
        producer.poll(0)
        time.sleep(0.1)
    producer.flush(60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=150.0, help="input records/s offered to each worker")
    ap.add_argument("--minutes", type=float, default=20.0, help="length of the feed")
    ap.add_argument("--warmup-s", type=float, default=120.0, help="samples before this are not in the slope")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--variant", action="append", default=None, help="NAME:K=V,K=V (repeatable)")
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    total = int(args.rate * args.minutes * 60)
    charges = max(100, total // 5)
    stream = generate(seed=11, customers=max(10, charges // 5), charges=charges, payouts=max(1, charges // 100))
    stream = stream[:total]
    runs = [Run(name, env, f"mem{uuid.uuid4().hex[:8]}.") for name, env in map(parse_variant,
                                                                                args.variant or DEFAULT_VARIANTS)]
    tmp = Path(tempfile.mkdtemp(prefix="stream-memory-"))
    say(f"feed: {len(stream):,} records at {args.rate:g}/s to {len(runs)} workers ({', '.join(r.name for r in runs)})")
    for run in runs:
        setup_topics(bootstrap, run.prefix)
        run.worker = StreamWorker(bootstrap, run.prefix, "mem", tmp / run.name / "data", tmp / f"{run.name}.log",
                                  commit_interval=1.0, extra_env=run.env)
    stop = threading.Event()
    try:
        for run in runs:
            assert run.worker is not None
            assert wait_for(lambda w=run.worker: w.metric("paysync_stream_assigned_partitions") > 0 or w.proc.poll() is not None,
                            timeout=120), f"{run.name} did not start"
        feeder = threading.Thread(target=feed, args=(bootstrap, [r.prefix for r in runs], stream, args.rate, stop))
        feeder.start()
        started = time.monotonic()
        while feeder.is_alive() or any(r.worker and r.worker.metric(PROCESSED) < len(stream) * 0.99 for r in runs):
            if time.monotonic() - started > args.minutes * 60 + 600:
                break
            for run in runs:
                assert run.worker is not None
                rss = proc_rss_mib(run.worker.proc.pid)
                if rss is not None and time.monotonic() - started >= args.warmup_s:
                    run.samples.append((run.worker.metric(PROCESSED), rss))
            time.sleep(args.sample_s)
        report(runs)
    finally:
        stop.set()
        for run in runs:
            if run.worker:
                run.worker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(runs: list[Run]) -> None:
    say("| variant | records | RSS after warm-up MiB | RSS at end MiB | slope, second half (MiB / 100k records) |")
    say("|---|---:|---:|---:|---:|")
    for run in runs:
        if not run.samples:
            say(f"| {run.name} | – | – | – | – |")
            continue
        half = run.samples[len(run.samples) // 2:]
        say(f"| {run.name} {' '.join(f'{k}={v}' for k, v in run.env.items())} | {run.samples[-1][0]:,.0f} | "
            f"{run.samples[0][1]:.1f} | {run.samples[-1][1]:.1f} | {slope_per_100k(half):.2f} |")


if __name__ == "__main__":
    raise SystemExit(main())
