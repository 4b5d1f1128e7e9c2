"""What the benchmark's phases share: the repository root, the traffic shape, printing, the probes (process CPU
and RSS, Prometheus scrapes, their deltas and histogram quantiles, consumer-group lag, percentiles) and the
pipeline under test started and warmed (`start_pipeline`, `drive`)."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from emulators.stripe_simulator.engine import Engine
from emulators.stripe_simulator.params import ScenarioParams
from ops.pipeline import LocalPipeline, Quiet
from paysync.settings import settings_env
from paysync.topics import SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from producers.pollers.settings import PollerSettings

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


def thread_cpu(pid: int, names: dict[str, str]) -> dict[str, float]:
    """CPU seconds of `pid`'s live threads by name, digits dropped (e.g. 'data-plane-kafka-request-handler-#')."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = names.get(task.name) or (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        key = re.sub(r"\d+", "#", name)
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def compiler_threads_cpu(pid: int) -> dict[str, float]:
    """Thread id -> CPU seconds of the JVM `pid`'s live JIT compiler threads ("C1/C2 CompilerThread#"; /proc's
    comm keeps "C2 CompilerThre")."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if "CompilerThre" not in (task / "comm").read_text():
                continue
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def compiler_cpu_since(start: dict[str, float], end: dict[str, float]) -> float:
    """CPU seconds the compiler threads of `end` used since `start` (two `compiler_threads_cpu` readings). A thread
    HotSpot retired in between is not counted, so this is a lower bound of what the JIT compiler used."""
    return sum(max(0.0, v - start.get(tid, 0.0)) for tid, v in end.items())


def proc_rss_mib(pid: int) -> float | None:
    """Resident set size of `pid` in MiB (VmRSS from /proc/<pid>/status); None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return None if kib is None else kib / 1024


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    """Prometheus text -> family name -> [(labels, value, sample name)]."""
    out: dict[str, list[tuple[dict[str, str], float, str]]] = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = [(dict(s.labels), float(s.value), s.name) for s in fam.samples]
    return out


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    """Prometheus text of 127.0.0.1:port/metrics, parsed (`parse_metrics`)."""
    return parse_metrics(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)


def metric_sum(metrics: dict[str, Any], family: str, sample_suffix: str = "_total", **labels: str) -> float:
    """The sum of a family's samples whose name ends in `sample_suffix` and whose labels match `labels`."""
    return float(sum(v for lab, v, name in metrics.get(family, [])
               if name.endswith(sample_suffix) and all(lab.get(k) == w for k, w in labels.items())))


def scrape_delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """`after` minus `before` (two `scrape`s), sample by sample: counters and histogram buckets of the window."""
    out: dict[str, Any] = {}
    for family, samples in after.items():
        was = {(name, tuple(sorted(lab.items()))): v for lab, v, name in before.get(family, [])}
        out[family] = [(lab, v - was.get((name, tuple(sorted(lab.items()))), 0.0), name) for lab, v, name in samples]
    return out


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
    """Committed-offset lag of consumer groups, probed cheaply.

    One probe of several groups (`many`) is one ListOffsets request for the end offsets of every partition
    (`offsets_for_times` at "latest", where `get_watermark_offsets` sends one per partition) and one OffsetFetch
    per group; the partitions of a topic are asked once (Metadata) and kept. Committed offsets are read by a
    Consumer per group that never subscribes, so it never joins. Not the AdminClient: `list_consumer_group_offsets`
    can segfault librdkafka while a fresh broker's group coordinator is not ready yet (confluent-kafka-python#1982).
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumers: dict[str, Consumer] = {}
        self.partitions: dict[str, list[int]] = {}

    def _consumer(self, group: str) -> Consumer:
        if group not in self.consumers:
            self.consumers[group] = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                                              "enable.auto.commit": False})
        return self.consumers[group]

    def _partitions(self, consumer: Consumer, topic: str) -> list[int]:
        """The partitions of `topic` (asked once; KafkaException while the broker does not know it yet)."""
        if topic not in self.partitions:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            if meta.error is not None or not meta.partitions:
                raise KafkaException(meta.error)
            self.partitions[topic] = sorted(meta.partitions)
        return self.partitions[topic]

    def many(self, groups: dict[str, list[str]]) -> dict[str, int | None]:
        """Records not yet committed by each group on its topics; None for every group while the broker cannot
        tell (e.g. NOT_COORDINATOR on a fresh broker)."""
        try:
            first = self._consumer(next(iter(groups)))
            tps = {t: [TopicPartition(t, p) for p in self._partitions(first, t)]
                   for t in sorted({t for topics in groups.values() for t in topics})}
            found = first.offsets_for_times([TopicPartition(t, p, OFFSET_END) for t in tps for p in
                                             self.partitions[t]], timeout=10)
            if any(tp.error is not None or tp.offset < 0 for tp in found):
                return dict.fromkeys(groups)
            ends = {(tp.topic, tp.partition): tp.offset for tp in found}
            out: dict[str, int | None] = {}
            for group, topics in groups.items():
                asked = [tp for t in topics for tp in tps[t]]
                done = {(tp.topic, tp.partition): tp.offset for tp in self._consumer(group).committed(asked,
                                                                                                        timeout=10)}
                out[group] = sum(ends[key] - max(done.get(key, -1), 0) for key in ends if key[0] in topics)
        except KafkaException:
            return dict.fromkeys(groups)
        return out

    def of(self, group: str, topics: list[str]) -> int | None:
        """`many` for one group."""
        return self.many({group: topics})[group]

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


# --- the pipeline under test, started and warmed ------------------------------------------------------------------

def stage_lags(p: LocalPipeline, lag: Lag) -> dict[str, int | None]:
    """Lag of the streams (both input topics) and of the sink, in one probe (`Lag.many`: ~4 broker requests)."""
    got = lag.many({p.stream_group(): [p.topic(STRIPE_EVENTS.name), p.topic(STRIPE_BALANCE_TRANSACTIONS.name)],
                    p.sink_group(): [p.topic(SALESFORCE_UPSERTS.name)]})
    return {"streams": got[p.stream_group()], "sink": got[p.sink_group()]}


def connected_accounts(seed: int, n: int) -> list[str]:
    """The connected accounts a simulator run with `seed` and `n` accounts will have (its engine's ids, not run)."""
    return [a.id for a in Engine(ScenarioParams(seed=seed, connected_accounts=n)).accounts[1:] if a.id]


def settle(p: LocalPipeline, quiet_s: float, timeout: float) -> float | None:
    """Until the simulator is done and both stages have had zero lag for `quiet_s` (lag asked once a second, only
    once the simulator is done); when that began (None: `timeout` ran out)."""
    assert p.stripe is not None
    lag, quiet = Lag(p.bootstrap), Quiet(quiet_s)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if p.stripe.status().get("done"):
                lags = stage_lags(p, lag)
                if None not in lags.values() and quiet.update(not any(lags.values())):
                    return quiet.since
            time.sleep(1.0)
    finally:
        lag.close()
    return None


@dataclass
class Started:
    """A started pipeline: its broker's pid and what its warm-up did (`events`, `seconds`, `finished`)."""

    broker_pid: int
    warmup: dict[str, Any] = field(default_factory=dict)

    @property
    def warmed(self) -> bool:
        return bool(self.warmup.get("events"))


def start_pipeline(p: LocalPipeline, warmup_events: int, rate: float, quiet_s: float, timeout: float,
                   say_step: Any = say) -> Started:
    """Start `p`, wait until the stream worker and the sink are up and in their groups, then warm it: drive
    `warmup_events` at `rate` and settle them (a fresh broker's JIT compiler otherwise takes about half of its CPU
    in a short run). The warm-up is a simulator run of its own seed with no connected accounts; the pollers start
    with it, already polling the accounts of the measured run (`drive`), so they poll what a cold run's would."""
    p.start(on_step=say_step)
    assert p.stripe is not None and p.supervisor is not None and p.broker_cfg is not None
    broker_pid = int(json.loads(p.broker_cfg.pid_file.read_text())["pid"])
    LocalPipeline.wait_http(f"http://127.0.0.1:{p.ports['sink_metrics']}/metrics", 60)
    LocalPipeline.wait_http(f"http://127.0.0.1:{p.ports['stream0_metrics']}/metrics", 90)
    time.sleep(3)  # the stream worker and the sink finish joining their groups
    started = Started(broker_pid, {"events": warmup_events, "seconds": 0.0, "finished": True})
    if warmup_events:
        say_step(f"warm-up: {warmup_events} events (rate {rate or 'max'}/s)")
        t0 = time.monotonic()
        p.stripe.generate(wait=False, events=warmup_events, rate=rate,
                          **{**TRAFFIC, "connected_accounts": 0, "seed": p.o.seed + 1})
        accounts = connected_accounts(p.o.seed, int(TRAFFIC["connected_accounts"]))
        p.supervisor.add("poll", ["poll"], env=settings_env(PollerSettings, stripe_accounts=",".join(accounts)))
        end = settle(p, quiet_s, timeout)
        started.warmup.update(seconds=round((end or time.monotonic()) - t0, 1), finished=end is not None)
        say_step(f"warm-up settled in {started.warmup['seconds']} s (finished {started.warmup['finished']})")
    return started


def drive(p: LocalPipeline, started: Started, events: int, rate: float) -> None:
    """The measured traffic: `events` at `rate` with the pipeline's seed (`TRAFFIC`), the run a cold pipeline
    would get; without a warm-up `LocalPipeline.drive` starts the pollers with it."""
    assert p.stripe is not None
    if started.warmed:
        p.stripe.generate(wait=False, events=events, rate=rate, seed=p.o.seed, **TRAFFIC)
    else:
        p.drive(events, rate, **TRAFFIC)
