"""Soak (a script, not a test; issue 18): the whole pipeline for an hour at a steady rate on a private 3-node KRaft
cluster, one node restarted every ten minutes, while the memory of every component, the consumer lag and the
end-to-end latency are sampled; at the end reconcile must be CLEAN and memory flat.

    .venv/bin/pip install -e '.[bench]'          # matplotlib, for the plot
    .venv/bin/python bench/soak.py                # 3600 s at 20 events/s, a restart every 600 s, a sample every 10 s
    .venv/bin/python bench/soak.py --duration 300 --restart-every 100     # a ~6-minute try

What it reuses: `ops.chaos.cluster` (the private cluster, the recording webhook proxy that measures non-2xx windows
and checks that no acknowledged webhook is lost, the catch-up wait after a node comes back) and through it
`ops.chaos.runner` (pipeline start, traffic, settle, the invariants: reconcile CLEAN, every payout Reconciled, no
duplicate); `bench_common` (RSS from /proc, lag of the consumer groups, the sink's histogram and its quantiles).

Rolling restart: at every `--restart-every` s of traffic the next node (1, 2, 3, 1, …) is stopped, alternately with
SIGTERM (controlled shutdown) and SIGKILL, stays down `--down-s` s, is started again, and the next restart waits
until every partition's ISR is full again. Samples every `--sample-s` s: RSS of the receiver, the pollers, the stream
worker, the sink, each Kafka node and the two emulators; lag of the stream and sink groups; p50/p99 of the sink's
`paysync_end_to_end_seconds` over the interval since the previous sample (difference of the cumulative buckets);
webhooks acknowledged and non-2xx answers seen by the proxy. `bench/soak_report.py` turns them into
`bench/soak.png`, `bench/soak.json` and the "Soak" section of `BENCHMARKS.md`.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_common import REPO, Lag, proc_rss_mib, say, scrape
from soak_report import LATENCY, Buckets, bucket_diff, quantiles, require_matplotlib, write_outputs

from ops.broker import status
from ops.chaos import runner
from ops.chaos.cluster import active_run, back_in_sync, private_cluster, run_on_cluster
from ops.chaos.runner import RunConfig, RunResult
from ops.chaos.scenarios import Action, Plan, plan as base_plan
from ops.kafka_cluster import ClusterConfig, kill_node, stop_cluster, stop_node
from ops.pipeline import LocalPipeline
from paysync.logs import setup_logging
from paysync.topics import SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS

log = logging.getLogger("paysync.soak")
COMPONENTS = {"webhook": "receiver", "poll": "pollers", "stream0": "stream worker", "sink": "sink"}
SIGNALS = ("SIGTERM", "SIGKILL")
SHORT = {"receiver": "recv", "pollers": "poll", "stream worker": "stream", "sink": "sink", "kafka node 1": "k1",
         "kafka node 2": "k2", "kafka node 3": "k3", "salesforce emulator": "sf", "stripe simulator": "sim"}


@dataclass
class Sample:
    """One sample, `t` seconds after the traffic started. Lag and quantiles are None when the probe failed."""

    t: float
    rss: dict[str, float | None]
    pids: dict[str, int | None]
    lag: dict[str, int | None]
    buckets: Buckets | None  # the sink's cumulative latency buckets (le -> count)
    p50: float | None  # over the interval since the previous successful scrape
    p99: float | None
    latency_count: int
    acked: int  # cumulative 2xx answers to webhook deliveries
    non2xx: int  # cumulative non-2xx answers (503 while Kafka elects, or no answer)


@dataclass
class Restart:
    """One node restart: when it went down (s after traffic start), how, when it was back and in sync."""

    at: float
    node: int
    how: str
    started_at: float | None = None
    in_sync_at: float | None = None
    error: str = ""


@dataclass
class Soak:
    """The run's shared state: the registered actions (`sample`, `restart`) fill it while the runner drives."""

    sample_s: float
    t0: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lag: Lag | None = None
    _act: Any = None  # ops.chaos.cluster's record of the run (its recorder)
    _last_buckets: Buckets | None = None
    _seen_answers: int = 0
    _acked: int = 0
    _non2xx: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # runner actions ------------------------------------------------------------------------------

    def start_sampling(self, p: LocalPipeline, action: Action, counts: Counter[str]) -> None:
        """Action `soak-sample` (at 0 s): start the sampling thread and return (the injector goes on)."""
        act = active_run(p)
        self.t0 = time.monotonic()
        self._act = act  # kept: the run is unregistered when the runner returns, while the last samples are taken
        self._lag = Lag(p.bootstrap)
        self._thread = threading.Thread(target=self._loop, args=(p, act.cluster), name="soak-sampler", daemon=True)
        self._thread.start()

    def restart(self, p: LocalPipeline, action: Action, counts: Counter[str]) -> None:
        """Action `soak-restart` (target `node/SIGNAL`): stop the node, keep it down, start it, wait for the ISRs."""
        act = active_run(p)
        node, how = action.target.split("/")
        rec = Restart(round(self.now(), 1), int(node), how)
        self.restarts.append(rec)
        try:
            (kill_node if how == "SIGKILL" else stop_node)(act.cluster, rec.node)
            counts[f"node-{how.lower()}"] += 1
            time.sleep(action.duration)  # a schedule: the node stays down this long, during traffic
            rec.started_at = round(self.now(), 1)
            back_in_sync(act, rec.node, "restart-catch-up-s")
            rec.in_sync_at = round(self.now(), 1)
        except Exception as exc:
            rec.error = f"{type(exc).__name__}: {exc}"
            raise
        say(f"  » t={rec.at:.0f} s node {rec.node} {how}: down {action.duration:g} s, in sync again at "
            f"{rec.in_sync_at} s")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self._lag is not None:
            self._lag.close()

    # sampling ------------------------------------------------------------------------------------

    def _loop(self, p: LocalPipeline, cluster: ClusterConfig) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                sample = self.take(p, cluster)
                self.samples.append(sample)
                if len(self.samples) % max(1, round(60 / self.sample_s)) == 1:
                    say(progress_line(sample))
            except Exception:  # noqa: BLE001 - one failed sample must not end the soak; the gap shows
                log.exception("soak sample failed")
            due += self.sample_s
            self._stop.wait(max(0.0, due - time.monotonic()))

    def pids(self, p: LocalPipeline, cluster: ClusterConfig) -> dict[str, int | None]:
        """The pid of every component now (None while it is down): supervisor children, Kafka nodes, emulators."""
        assert p.supervisor is not None and p.stripe is not None
        out: dict[str, int | None] = {}
        for name, label in COMPONENTS.items():
            comp = p.supervisor.components.get(name)
            proc = comp.process if comp is not None else None
            out[label] = proc.pid if proc is not None and proc.poll() is None else None
        for node in cluster.nodes():
            st = status(node)
            out[f"kafka node {node.node_id}"] = st.pid if st.running else None
        out["salesforce emulator"] = p.sf.process.pid if p.sf.process.poll() is None else None
        out["stripe simulator"] = p.stripe.process.pid if p.stripe.process.poll() is None else None
        return out

    def take(self, p: LocalPipeline, cluster: ClusterConfig) -> Sample:
        """One sample of everything."""
        t = round(self.now(), 1)
        pids = self.pids(p, cluster)
        rss = {name: (round(v, 1) if (v := proc_rss_mib(pid)) is not None else None) if pid else None
               for name, pid in pids.items()}
        assert self._lag is not None
        lag = {"streams": self._lag.of(p.stream_group(), [p.topic(STRIPE_EVENTS.name),
                                                          p.topic(STRIPE_BALANCE_TRANSACTIONS.name)]),
               "sink": self._lag.of(p.sink_group(), [p.topic(SALESFORCE_UPSERTS.name)])}
        buckets: Buckets | None
        try:
            buckets = {float(lab["le"]): v for lab, v, name in scrape(p.ports["sink_metrics"]).get(LATENCY, [])
                       if name.endswith("_bucket")} or None
        except Exception:  # noqa: BLE001 - the sink may be restarting: no latency for this interval
            buckets = None
        q: dict[str, Any] = {"p50": None, "p99": None, "count": 0}
        if buckets is not None:
            q = quantiles(bucket_diff(self._last_buckets, buckets))
            self._last_buckets = buckets
        self._count_answers(p)
        return Sample(t, rss, pids, lag, buckets, q["p50"], q["p99"], int(q["count"]), self._acked, self._non2xx)

    def _count_answers(self, p: LocalPipeline) -> None:
        recorder = self._act.recorder if self._act is not None else None
        if recorder is None:
            return
        answers = recorder.answers()
        for a in answers[self._seen_answers:]:
            if 200 <= a.status < 300:
                self._acked += 1
            else:
                self._non2xx += 1
        self._seen_answers = len(answers)


def progress_line(s: Sample) -> str:
    """One line for the log."""
    mem = " ".join(f"{SHORT.get(k, k)}={v:.0f}" for k, v in s.rss.items() if v is not None)
    p99 = f"{s.p99:.2f}" if s.p99 is not None else "-"
    return (f"  · t={s.t:6.0f} s  MiB: {mem}  lag={s.lag['streams']}/{s.lag['sink']}  p99={p99} s  "
            f"acked={s.acked} non-2xx={s.non2xx}")


def heap_mib(heap: str) -> float:
    """A JVM heap setting ("512m", "1g") in MiB."""
    unit = heap[-1].lower()
    return float(heap[:-1]) * {"k": 1 / 1024, "m": 1.0, "g": 1024.0}[unit] if unit in "kmg" else float(heap) / 2**20


def save_raw(path: Path, args: argparse.Namespace, started: str, total_s: float, soak: Soak,
             result: RunResult) -> None:
    """Everything the report needs, written before the report (so `--from-raw` can redo a failed report)."""
    data = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "started": started,
            "total_s": total_s, "load_end": os.getloadavg()[0], "samples": [asdict(s) for s in soak.samples],
            "restarts": [asdict(r) for r in soak.restarts], "result": asdict(result)}
    path.write_text(json.dumps(data, default=str), encoding="utf-8")


def report_from_raw(args: argparse.Namespace) -> int:
    """`--from-raw PATH`: the outputs again from a saved run."""
    data = json.loads(args.from_raw.read_text(encoding="utf-8"))
    for key in ("duration", "rate", "restart_every", "down_s", "sample_s", "seed", "kafka_heap_mib"):
        setattr(args, key, data["args"][key])
    samples = [Sample(**{**s, "buckets": {float(k): v for k, v in s["buckets"].items()} if s["buckets"] else None})
               for s in data["samples"]]
    result = RunResult(**data["result"])
    flat = write_outputs(args, data["started"], data["total_s"], samples,
                         [Restart(**r) for r in data["restarts"]], result, data.get("load_end"))
    say(f"wrote {args.png}, {args.json} and the Soak section of {args.markdown} from {args.from_raw}")
    return 0 if result.passed and flat else 1


def soak_plan(duration: float, rate: float, restart_every: float, down_s: float, seed: int) -> Plan:
    """The chaos runner's base knobs, the recording proxy and the sampler at 0 s, then one restart per period."""
    p = base_plan([], int(rate * duration), rate, seed)
    p.names = ["soak"]
    p.actions = [Action(0.0, "cluster-record"), Action(0.0, "soak-sample")]
    k, at = 0, restart_every
    while restart_every > 0 and at < duration:
        p.actions.append(Action(at, "soak-restart", f"{k % 3 + 1}/{SIGNALS[k % 2]}", down_s))
        k, at = k + 1, at + restart_every
    return p


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=3600.0, help="seconds of traffic")
    ap.add_argument("--rate", type=float, default=20.0, help="simulated events/s")
    ap.add_argument("--restart-every", type=float, default=600.0, help="seconds between node restarts (0: none)")
    ap.add_argument("--down-s", type=float, default=30.0, help="how long a restarted node stays down")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--flat-mib-per-h", type=float, default=10.0, help="RSS slope that still counts as flat")
    ap.add_argument("--keep-workdir", action="store_true", help="keep the work folder (component logs)")
    ap.add_argument("--png", type=Path, default=REPO / "bench" / "soak.png")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "soak.json")
    ap.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--raw", type=Path, default=Path(tempfile.gettempdir()) / "paysync-soak-raw.json",
                    help="every sample, written before the report")
    ap.add_argument("--from-raw", type=Path, default=None, help="only write the report again from a --raw file")
    return ap


def run(args: argparse.Namespace, soak: Soak, workdir: Path) -> RunResult:
    """The soak itself on a private cluster (stopped at the end, whatever happens)."""
    runner.EXTRA_ACTIONS.update({"soak-sample": soak.start_sampling, "soak-restart": soak.restart})
    plan = soak_plan(args.duration, args.rate, args.restart_every, args.down_s, args.seed)
    cfg = RunConfig(events=int(args.rate * args.duration), rate=args.rate, seed=args.seed, workdir=workdir / "run",
                    settle_timeout_s=args.duration + 900.0)
    say("  » starting a private 3-node cluster")
    cluster = private_cluster(workdir / "kafka")
    args.kafka_heap_mib = heap_mib(cluster.heap)
    try:
        return run_on_cluster(plan, cfg, cluster, say, catch_up_s=120.0)
    finally:
        soak.stop()
        stop_cluster(cluster)


def main() -> int:
    """Run the soak, write the plot, the JSON and the BENCHMARKS.md section; 0 when reconcile passed and memory
    is flat."""
    args = _parser().parse_args()
    require_matplotlib()
    if args.from_raw is not None:
        return report_from_raw(args)
    faulthandler.enable()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the cluster and children
    setup_logging("WARNING")
    workdir = Path(tempfile.mkdtemp(prefix="paysync-soak-"))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    say(f"soak: {args.duration:g} s at {args.rate:g} events/s, a node restart every {args.restart_every:g} s · "
        f"workdir {workdir}")
    soak = Soak(args.sample_s)
    t0 = time.monotonic()
    try:
        result = run(args, soak, workdir)
    finally:
        if args.keep_workdir:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    say(result.line())
    save_raw(args.raw, args, started, time.monotonic() - t0, soak, result)
    say(f"raw samples in {args.raw}")
    flat = write_outputs(args, started, time.monotonic() - t0, soak.samples, soak.restarts, result)
    say(f"wrote {args.png}, {args.json} and the Soak section of {args.markdown}")
    return 0 if result.passed and flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
