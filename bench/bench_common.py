"""What the benchmark's phases share: the repository root, the traffic shape, printing, and the probes
(process CPU and RSS, Prometheus scrapes and histogram quantiles, consumer-group lag, percentiles)."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
TRAFFIC = {"delay_scale": 0.001, "connected_accounts": 3}  # the demo's traffic shape (story delays compressed)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def proc_cpu(pid: int) -> float:
    """user+sys CPU seconds of `pid` (and its reaped children), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK  # utime stime cutime cstime


def proc_rss_mib(pid: int) -> float | None:
    """Resident set size of `pid` in MiB (VmRSS from /proc/<pid>/status); None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return None if kib is None else kib / 1024


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    """Prometheus text of 127.0.0.1:port/metrics -> family name -> [(labels, value, sample name)]."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, list[tuple[dict[str, str], float, str]]] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = [(dict(s.labels), float(s.value), s.name) for s in fam.samples]
    return out


def metric_sum(metrics: dict[str, Any], family: str, sample_suffix: str = "_total", **labels: str) -> float:
    """The sum of a family's samples whose name ends in `sample_suffix` and whose labels match `labels`."""
    return float(sum(v for lab, v, name in metrics.get(family, [])
               if name.endswith(sample_suffix) and all(lab.get(k) == w for k, w in labels.items())))


def histogram_quantiles(metrics: dict[str, Any], family: str) -> dict[str, float | None]:
    """p50/p99 by linear interpolation inside the Prometheus buckets, plus the shares at or under 1 s and 2 s."""
    buckets = sorted(((float(lab["le"]), v) for lab, v, name in metrics.get(family, []) if name.endswith("_bucket")),
                     key=lambda b: b[0])
    total = buckets[-1][1] if buckets else 0.0
    if not total:
        return {"p50": None, "p99": None, "share_le_1s": None, "share_le_2s": None, "count": 0}

    def q(p: float) -> float:
        rank, lo, below = p * total, 0.0, 0.0
        for le, cum in buckets:
            if cum >= rank:
                if le == float("inf"):
                    return lo
                return float(lo + (le - lo) * ((rank - below) / max(cum - below, 1e-9)))
            lo, below = le, cum
        return lo

    def share(bound: float) -> float | None:
        cum = next((c for le, c in buckets if le == bound), None)
        return None if cum is None else cum / total

    return {"p50": q(0.50), "p99": q(0.99), "share_le_1s": share(1.0), "share_le_2s": share(2.0),
            "count": int(total)}


class Lag:
    """Committed-offset lag of consumer groups, polled often.

    A Consumer per group (never subscribed, so it never joins) reads committed offsets and watermarks. Not the
    AdminClient: `list_consumer_group_offsets` can segfault librdkafka while a fresh broker's group coordinator is
    not ready yet (confluent-kafka-python#1982).
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumers: dict[str, Consumer] = {}

    def _consumer(self, group: str) -> Consumer:
        if group not in self.consumers:
            self.consumers[group] = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                                              "enable.auto.commit": False})
        return self.consumers[group]

    def of(self, group: str, topics: list[str]) -> int | None:
        """Records not yet committed; None while the broker cannot tell (e.g. NOT_COORDINATOR on a fresh broker)."""
        consumer = self._consumer(group)
        total = 0
        try:
            for topic in topics:
                parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                tps = [TopicPartition(topic, p) for p in parts]
                done = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
                for tp in tps:
                    end = consumer.get_watermark_offsets(tp, timeout=10)[1]
                    total += end - max(done.get(tp.partition, -1), 0)
        except KafkaException:
            return None
        return total

    def close(self) -> None:
        for consumer in self.consumers.values():
            consumer.close()
        self.consumers.clear()


def pct(values: list[float], p: float) -> float | None:
    """The `p`th percentile (inclusive method) of `values`; None when there are none."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (from each /proc/<n>/stat's parent field)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def tree_cpu(pid: int) -> float:
    """user+sys CPU seconds of `pid`, its reaped children and its live children (e.g. gunicorn's workers)."""
    return proc_cpu(pid) + sum(proc_cpu(child) for child in child_pids(pid))


DAILY_BUDGET = 100_000  # API calls a day: the budget the records-per-day figure is stated against


def sf_knobs(args: Any) -> dict[str, Any]:
    """The Salesforce emulator's knobs for both sides of the comparison: the latency model, the Bulk pace and
    the daily API limit (`--sf-*` flags)."""
    return {"latency_ms": args.sf_latency_ms, "latency_per_record_ms": args.sf_latency_per_record_ms,
            "bulk_queue_s": args.sf_bulk_queue_s, "bulk_records_per_s": args.sf_bulk_records_per_s,
            "daily_limit": args.sf_daily_limit}


def sf_latency_model(args: Any) -> dict[str, Any]:
    """`sf_knobs` as `results.json` documents them (what both paths saw, in every phase)."""
    return {"ms_per_call": args.sf_latency_ms, "ms_per_record_saved": args.sf_latency_per_record_ms,
            "bulk_queue_s": args.sf_bulk_queue_s, "bulk_records_per_s": args.sf_bulk_records_per_s,
            "daily_api_limit": args.sf_daily_limit,
            "applies_to": "every REST/Composite/Collections/query/Bulk HTTP request (auth excluded); "
                          "Bulk jobs run at bulk_records_per_s after bulk_queue_s queued",
            "phases": ["paysync", "naive", "latency", "replay"]}


def records_per_day(calls_per_1k: float | None, budget: int = DAILY_BUDGET) -> float | None:
    """Records a day that `budget` API calls can sync at `calls_per_1k` calls per 1,000 records."""
    if not calls_per_1k:
        return None
    return budget * 1000 / calls_per_1k
