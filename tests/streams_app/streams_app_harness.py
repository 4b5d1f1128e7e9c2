"""Running `paysync stream` as a subprocess in tests, feeding its input topics and reading its outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from paysync.net import free_port
from paysync.codec import AvroCodec
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS, create_topics

from streams_app_gen import Rec, encode

REPO = Path(__file__).resolve().parents[2]
PAYSYNC = REPO / ".venv" / "bin" / "paysync"
PARTITIONS = 4
STALL_TIMEOUT_S = 30  # well below the tests' waits: a worker whose partition stalls exits and the group moves on


class StreamWorker:
    """One `paysync stream` process; stopped by `stop()` (SIGTERM, then SIGKILL) or `kill()`.

    `launcher` is the command that runs `paysync stream` (its flags are appended); `extra_env` overrides the
    environment, including the defaults below.
    """

    def __init__(self, bootstrap: str, prefix: str, app_id: str, data_dir: Path, log_path: Path,
                 commit_interval: float = 0.3, extra_env: dict[str, str] | None = None,
                 launcher: list[str] | None = None) -> None:
        self.metrics_port = free_port()
        self.log_path = log_path
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PAYSYNC_TOPIC_PREFIX": prefix,
               "PAYSYNC_TOPIC_PARTITIONS": str(PARTITIONS), "PAYSYNC_STREAM_SESSION_TIMEOUT_S": "6",
               "PAYSYNC_STREAM_STALL_TIMEOUT_S": str(STALL_TIMEOUT_S), **(extra_env or {})}
        if launcher is None:
            launcher = [str(PAYSYNC), "stream"] if PAYSYNC.exists() else [sys.executable, "-m", "ops.cli", "stream"]
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            [*launcher, "--app-id", app_id, "--data-dir", str(data_dir), "--metrics-port", str(self.metrics_port),
             "--commit-interval", str(commit_interval)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def metric(self, name: str) -> float:
        """Sum of every sample of `name` (0 when the endpoint is not up yet)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        """SIGKILL, no clean shutdown."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        """SIGTERM; SIGKILL after 20 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if not self.log.closed:
            self.log.close()


def setup_topics(bootstrap: str, prefix: str) -> None:
    create_topics({"bootstrap.servers": bootstrap}, prefix, PARTITIONS)


def produce(bootstrap: str, prefix: str, recs: list[Rec], raw: list[tuple[str, bytes, bytes]] = ()) -> None:
    """Write records (and raw `(kind, key, value)` extras) to the input topics and wait for the broker."""
    codec = AvroCodec()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    topics = {"events": STRIPE_EVENTS.full_name(prefix), "bts": STRIPE_BALANCE_TRANSACTIONS.full_name(prefix)}
    for rec in recs:
        producer.produce(topics[rec.kind], key=rec.key.encode(), value=encode(codec, rec))
        producer.poll(0)
    for kind, key, value in raw:
        producer.produce(topics[kind], key=key, value=value)
    assert producer.flush(30) == 0


class TopicReader:
    """Reads a whole topic from the beginning, partition by partition, keeping each partition's order."""

    def __init__(self, bootstrap: str, topic: str, schema: str) -> None:
        self.codec = AvroCodec()
        self.schema = schema
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}-{time.time()}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        parts = PARTITIONS if schema != DEAD_LETTERS.schema else (DEAD_LETTERS.partitions or PARTITIONS)
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(parts)])
        self.by_partition: dict[int, list[dict[str, Any]]] = {}

    def poll(self, seconds: float = 1.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msgs = self.consumer.consume(500, timeout=0.2)
            for m in msgs:
                if m.error():
                    continue
                self.by_partition.setdefault(m.partition(), []).append(self.codec.decode(m.value(), self.schema))

    def records(self) -> list[dict[str, Any]]:
        return [r for p in sorted(self.by_partition) for r in self.by_partition[p]]

    def close(self) -> None:
        self.consumer.close()


def upsert_reader(bootstrap: str, prefix: str) -> TopicReader:
    return TopicReader(bootstrap, SALESFORCE_UPSERTS.full_name(prefix), SALESFORCE_UPSERTS.schema)


def dlq_reader(bootstrap: str, prefix: str) -> TopicReader:
    return TopicReader(bootstrap, DEAD_LETTERS.full_name(prefix), DEAD_LETTERS.schema)


def wait_until(reader: TopicReader, done: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
    """Poll `reader` until `done(records)` holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reader.poll(0.5)
        if done(reader.records()):
            return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` every 0.25 s until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def start_worker(workers: list["StreamWorker"], bootstrap: str, prefix: str, app_id: str, data_dir: Path) -> "StreamWorker":
    """Start a worker logging next to its data dir and register it for teardown."""
    w = StreamWorker(bootstrap, prefix, app_id, data_dir, data_dir.parent / f"{data_dir.name}.log")
    workers.append(w)
    return w


def diff_states(actual: dict[Any, Any], expected: dict[Any, Any]) -> str:
    """A short account of how two folded Salesforce states differ."""
    missing = [k for k in expected if k not in actual][:5]
    extra = [k for k in actual if k not in expected][:5]
    wrong = [(k, actual[k], expected[k]) for k in expected if k in actual and actual[k] != expected[k]][:2]
    return f"missing {missing} extra {extra} wrong {wrong}"


def worker_report(workers: list[StreamWorker], lines: int = 30) -> str:
    """Each worker's exit status (None: running) and the last `lines` non-DEBUG lines of its log, for failures."""
    parts: list[str] = []
    for w in workers:
        text = w.log_path.read_text(errors="replace") if w.log_path.exists() else ""
        tail = [line[:400] for line in text.splitlines() if '"level": "debug"' not in line][-lines:]
        parts.append(f"\n--- {w.log_path.name}: exit status {w.proc.poll()}\n" + "\n".join(tail))
    return "".join(parts)
