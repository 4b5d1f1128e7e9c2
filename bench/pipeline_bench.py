"""End-to-end benchmark (a script, not a test): paysync vs a naive webhook → REST baseline, side by side.

    .venv/bin/python bench/pipeline_bench.py [--quick] [--events 20000] [--naive-events 5000]
                                             [--replay-events 1000000] [--rate 0] [--profile-seconds 20]
                                             [--warmup-events 3000] [--latency-warmup-seconds 10]
                                             [--sf-latency-ms 150] [--sf-latency-per-record-ms 1]
                                             [--latency-rates 100,300] [--latency-seconds 30]

Phases, in one run on one machine (see bench/README.md for the method); both paths' Salesforce emulators answer
with the same latency model (`--sf-latency-ms` per call + `--sf-latency-per-record-ms` per record saved, Bulk jobs
at `--sf-bulk-*` pace, `--sf-daily-limit` API calls a day):
1. paysync: `LocalPipeline` on a private KRaft broker, warmed with `--warmup-events` (driven and settled, not
   measured); then the Stripe simulator delivers `--events` signed webhooks (`--rate` events/s, 0 = as fast as it
   can) while the pollers run; measured until everything is in Salesforce.
2. naive: `bench/naive_receiver.py` under gunicorn (`--naive-workers` × `--naive-threads`, gthread; one REST
   upsert per record) with its own emulator, the same simulator seed and traffic shape.
2b. latency: paysync again (fresh pipelines, each warmed with `--latency-warmup-seconds` at its rate) at each of
   `--latency-rates` events/s offered for `--latency-seconds`: p50/p99 webhook → Salesforce at a fixed load.
3. replay: `--replay-events` generated events published as envelopes onto a fresh `stripe.events`, then a fresh
   stream worker (new app id, offset 0) + a sink drain them into a fresh emulator; the slowest stage is profiled
   with py-spy while it works.
Writes `bench/results.json` and `BENCHMARKS.md` (repository root) and prints the figures.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_common import DAILY_BUDGET, REPO, say, sf_latency_model
from bench_naive import run_naive
from bench_paysync import Phase, latency_phase, run_paysync
from bench_replay import run_replay, stream_summary
from bench_report import fmt, machine, verdicts, write_markdown

from ops.broker import BrokerConfig, BrokerError, start, stop
from paysync.net import free_port

def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (~6 minutes): 3000 / 1000 / 10000 events, "
                    "10 s latency phases; warm-ups of at most 1000 events and 5 s")
    ap.add_argument("--events", type=int, default=20_000, help="events driven through paysync")
    ap.add_argument("--naive-events", type=int, default=None, help="events driven through the baseline "
                    "(default min(--events, 5000); its rate does not depend on the count)")
    ap.add_argument("--warmup-events", type=int, default=3000, help="events driven through each fresh pipeline "
                    "(at --rate) and settled before the paysync phase is measured; 0 = measure a cold broker")
    ap.add_argument("--replay-events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=0.0, help="simulated events/s (0 = as fast as delivered)")
    ap.add_argument("--delivery-concurrency", type=int, default=16, help="the simulator's webhook senders")
    ap.add_argument("--poll-interval", type=float, default=5.0)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--stream-workers", type=int, default=1, help="stream worker processes (pipeline and replay)")
    ap.add_argument("--naive-workers", type=int, default=2, help="the baseline's gunicorn worker processes")
    ap.add_argument("--naive-threads", type=int, default=16, help="threads per baseline worker (gthread)")
    ap.add_argument("--naive-delivery-concurrency", type=int, default=None,
                    help="the simulator's senders for the baseline (default workers × threads: every thread busy)")
    ap.add_argument("--sf-latency-ms", type=int, default=150, help="Salesforce emulator: fixed latency per call")
    ap.add_argument("--sf-latency-per-record-ms", type=int, default=1, help="… plus this per record saved")
    ap.add_argument("--sf-bulk-queue-s", type=float, default=3.0, help="… a closed Bulk job's time in the queue")
    ap.add_argument("--sf-bulk-records-per-s", type=int, default=3000, help="… a Bulk job's processing pace")
    ap.add_argument("--sf-daily-limit", type=int, default=DAILY_BUDGET, help="… the org's daily API calls "
                    "(the sink's adaptive flushing paces early writes by it)")
    ap.add_argument("--latency-rates", default="100,300", help="offered events/s of the fixed-rate latency phases")
    ap.add_argument("--latency-seconds", type=float, default=30.0, help="length of each fixed-rate phase")
    ap.add_argument("--latency-warmup-seconds", type=float, default=10.0, help="each fixed-rate phase is warmed with "
                    "this long at its rate (driven and settled) before it is measured; 0 = cold")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds of zero lag that mean 'all in Salesforce'")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--replay-timeout", type=float, default=900.0, help="stop the replay after this; extrapolate")
    ap.add_argument("--profile-seconds", type=float, default=20.0)
    ap.add_argument("--skip", choices=("naive", "latency", "replay"), action="append", default=[])
    ap.add_argument("--keep-workdir", action="store_true", help="keep the work folder (component logs, profiles)")
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results.json")
    ap.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    return ap


def _replay_phase(args: argparse.Namespace, workdir: Path, slowest: str) -> dict[str, Any]:
    """Phase 3 on its own private broker (started once more if the first start fails); a failed replay is
    reported in the results instead of losing phases 1 and 2."""
    replay: dict[str, Any] = {"events": 0, "seconds": None, "streams_seconds": None, "events_per_s": None,
                              "finished": False, "replay_1m_s": None, "replay_1m_extrapolated": True}
    say("phase 3/3: replay from offset 0")
    cfg = BrokerConfig(port=free_port(), controller_port=free_port(), data_dir=workdir / "replay-kafka")
    try:
        bootstrap, _ = start(cfg, fresh=True)
    except BrokerError as exc:  # e.g. a random cluster id starting with '-' trips kafka-storage's parser
        say(f"  replay: broker did not start ({exc}); trying once more")
        bootstrap, _ = start(cfg, fresh=True)
    try:
        replay = run_replay(args, workdir, bootstrap, slowest)
    except Exception as exc:  # noqa: BLE001 - keep phases 1-2; the report says the replay failed
        say(f"  replay failed: {type(exc).__name__}: {exc}")
        replay["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        stop(cfg)
    say(f"  -> replay {replay['events']} events: {fmt(replay['seconds'], 1)} s; "
        f"1M: {fmt(replay['replay_1m_s'], 0)} s")
    return replay


def _latency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The fixed-rate phases: `latency.p99_s_at_<rate>` (and p50) plus each run's detail."""
    out: dict[str, Any] = {"seconds_each": args.latency_seconds, "runs": {}}
    if "latency" in args.skip:
        return out
    for rate in [float(r) for r in str(args.latency_rates).split(",") if r.strip()]:
        run = latency_phase(args, workdir, rate)
        out["runs"][f"{rate:g}"] = run
        out[f"p50_s_at_{rate:g}"], out[f"p99_s_at_{rate:g}"] = run["p50_s"], run["p99_s"]
    return out


def _phases(args: argparse.Namespace, workdir: Path) -> tuple[Phase, Phase, dict[str, Any], dict[str, Any]]:
    """Run the phases (naive, latency and replay unless `--skip`ped) in `workdir`."""
    say("phase 1/3: paysync")
    try:
        ps = run_paysync(args, workdir)
    except BrokerError as exc:  # the private broker did not start (see the replay phase); once more
        say(f"  paysync: broker did not start ({exc}); trying once more")
        ps = run_paysync(args, workdir)
    say(f"  -> {json.dumps(ps.figures)}")
    nv = Phase({k: None for k in ps.figures}, {"events": 0, "records": 0, "seconds": 0.0, "failures": 0,
                                               "salesforce_calls": {}, "cpu_s": {}, "server": "skipped"})
    if "naive" not in args.skip:
        say("phase 2/3: naive baseline")
        nv = run_naive(args, workdir)
        say(f"  -> {json.dumps(nv.figures)}")
    latency = _latency(args, workdir)
    replay: dict[str, Any] = {"events": 0, "seconds": None, "streams_seconds": None, "events_per_s": None,
                              "finished": False, "replay_1m_s": None, "replay_1m_extrapolated": True}
    if "replay" not in args.skip:
        replay = _replay_phase(args, workdir, ps.detail["slowest_stage"])
    return ps, nv, latency, replay


def _uptime() -> str:
    """`uptime`'s line (load averages over 1, 5 and 15 minutes)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return Path("/proc/loadavg").read_text().strip()


def main() -> int:
    """Run the benchmark; write `--json` and `--markdown` and print the verdicts."""
    args = _parser().parse_args()
    args.argv = sys.argv[1:]
    faulthandler.enable()  # a native crash (librdkafka) should at least say where
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop brokers and children
    if args.quick:
        args.events, args.replay_events, args.profile_seconds = 3000, 10_000, 8.0
        args.naive_events = args.naive_events or 1000
        args.latency_seconds = min(args.latency_seconds, 10.0)
        args.warmup_events = min(args.warmup_events, 1000)
        args.latency_warmup_seconds = min(args.latency_warmup_seconds, 5.0)
    args.naive_events = args.naive_events or min(args.events, 5000)
    workdir = Path(tempfile.mkdtemp(prefix="paysync-bench-"))
    load_start, uptime_start = os.getloadavg()[0], _uptime()
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    say(f"paysync end-to-end benchmark · load {load_start:.2f} · workdir {workdir}")
    try:
        ps, nv, latency, replay = _phases(args, workdir)
    finally:
        if args.keep_workdir:
            say(f"kept {workdir} (logs, profiles)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    naive_rate = nv.figures["events_per_s"]
    results = {
        "machine": machine(), "date": date, "paysync": ps.figures, "naive": nv.figures,
        "speedup_vs_naive": ps.figures["events_per_s"] / naive_rate if naive_rate else None,
        "latency": latency, "replay_1m_s": replay["replay_1m_s"], "stream": stream_summary(replay),
        "sf_latency_model": sf_latency_model(args), "warmup_events": args.warmup_events,
        "warmup": {"events": args.warmup_events, "seconds": ps.detail["warmup"].get("seconds"),
                   "latency_warmup_seconds": args.latency_warmup_seconds,
                   "latency_events": {rate: r.get("warmup", {}).get("events")
                                      for rate, r in latency.get("runs", {}).items()}},
        "load": {"start": load_start, "end": os.getloadavg()[0], "loadavg_start": uptime_start,
                 "loadavg_end": _uptime()},
        "detail": {"paysync": ps.detail, "naive": nv.detail, "replay": replay},
    }
    args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    write_markdown(args.markdown, results, args)
    for name, value, target, ok in verdicts(results):
        say(f"{name:<45} {value:>12}  target {target:<8} {'met' if ok else 'NOT met' if ok is False else '?'}")
    say(f"wrote {args.json} and {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
