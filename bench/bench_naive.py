"""Phase 2 of the benchmark: the naive baseline (`bench/naive_receiver.py` under gunicorn, `--naive-workers` ×
`--naive-threads`, one REST upsert per record) with its own Salesforce emulator (the same latency model as
paysync's), the same simulator seed and traffic shape."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_common import REPO, TRAFFIC, pct, proc_cpu, records_per_day, say, sf_knobs, tree_cpu
from bench_paysync import Phase
from naive_receiver import NaiveSettings, merge_stats

from emulators.salesforce_emulator import start_emulator
from emulators.stripe_simulator.handle import start_simulator
from ops.pipeline import WEBHOOK_SECRETS
from paysync.net import free_port
from paysync.settings import settings_env


def _start_receiver(args: argparse.Namespace, sf: Any, stats_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes],
                                                                                             int]:
    """gunicorn with the naive app; returns the master process and its port once every worker has logged in."""
    port = free_port()
    creds = sf.credentials
    env = {**os.environ,
           **settings_env(NaiveSettings, naive_port=port, naive_workers=args.naive_workers,
                          naive_threads=args.naive_threads, naive_stats_dir=str(stats_dir),
                          webhook_secrets=",".join(WEBHOOK_SECRETS), salesforce_login_url=sf.base_url,
                          salesforce_client_id=creds["client_id"], salesforce_client_secret=creds["client_secret"],
                          salesforce_ca_bundle=sf.ca_cert_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "naive_receiver.py")], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(log, "ab"))  # noqa: SIM115 - the child owns it
    deadline = time.monotonic() + 90
    while len(list(stats_dir.glob("*.ready"))) < args.naive_workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the naive receiver did not start; see {log}")
        time.sleep(0.1)
    return proc, port


def _stop_receiver(proc: subprocess.Popen[bytes], stats_dir: Path, workers: int) -> dict[str, Any]:
    """SIGTERM (gunicorn's graceful stop: each worker writes its stats), then the workers' stats merged."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(45)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    parts = [json.loads(p.read_text()) for p in sorted(stats_dir.glob("*.json"))]
    if len(parts) < workers:
        say(f"  naive: only {len(parts)} of {workers} workers wrote their stats")
    return merge_stats(parts)


def run_naive(args: argparse.Namespace, workdir: Path) -> Phase:
    """Drive `--naive-events` through the baseline; its figures in the same terms as paysync's."""
    folder = workdir / "naive"
    stats_dir = folder / "stats"
    stats_dir.mkdir(parents=True)
    sf = start_emulator(folder / "salesforce.db", **sf_knobs(args))
    proc, port = _start_receiver(args, sf, stats_dir, workdir / "naive-receiver.log")
    concurrency = args.naive_delivery_concurrency or args.naive_workers * args.naive_threads
    sim = None
    try:
        sim = start_simulator(seed=args.seed, webhook_url=f"http://127.0.0.1:{port}/webhooks/stripe",
                              webhook_secrets=list(WEBHOOK_SECRETS), clock="realtime",
                              delivery_concurrency=concurrency, timeout=30.0)
        sf_before = sf.stats()["calls"]
        cpu0 = {"naive receiver": tree_cpu(proc.pid), "salesforce emulator": proc_cpu(sf.process.pid),
                "stripe simulator": proc_cpu(sim.process.pid)}
        say(f"  naive: driving {args.naive_events} events (gunicorn {args.naive_workers} workers × "
            f"{args.naive_threads} threads, delivery concurrency {concurrency})")
        sim.generate(wait=True, timeout=args.timeout, events=args.naive_events, rate=args.rate, **TRAFFIC)
        cpu = {"naive receiver": tree_cpu(proc.pid) - cpu0["naive receiver"],
               "salesforce emulator": proc_cpu(sf.process.pid) - cpu0["salesforce emulator"],
               "stripe simulator": proc_cpu(sim.process.pid) - cpu0["stripe simulator"]}
        sim_status = sim.status()
        stripe_calls = int(sim.stats().get("total", 0))
        sf_after = sf.stats()["calls"]
    finally:
        stats = _stop_receiver(proc, stats_dir, args.naive_workers)
        if sim is not None:
            sim.stop()
        sf.stop()
    sf_calls = {k: sf_after.get(k, 0) - sf_before.get(k, 0) for k in sf_after}
    return naive_phase(stats, cpu, sf_calls, stripe_calls,
                       {"deliveries": sim_status.get("deliveries"), "delivery_concurrency": concurrency,
                        "server": f"gunicorn gthread, {args.naive_workers} workers × {args.naive_threads} threads"})


def naive_phase(stats: dict[str, Any], cpu: dict[str, float], sf_calls: dict[str, int], stripe_calls: int,
                extra: dict[str, Any]) -> Phase:
    """The baseline's figures from the merged worker stats, CPU seconds by process and the call counts."""
    api_calls = sum(v for k, v in sf_calls.items() if k != "auth")
    events = int(stats["requests"])
    elapsed = max((stats["last_done"] or 0) - (stats["first_receive"] or 0), 1e-9)
    lat = sorted(stats["latencies"])
    calls_per_1k = api_calls * 1000 / max(stats["records"], 1)
    figures = {
        "events_per_s": events / elapsed, "p50_latency_s": pct(lat, 50), "p99_latency_s": pct(lat, 99),
        "salesforce_calls_per_1k": calls_per_1k, "stripe_calls_per_1k": stripe_calls * 1000 / max(events, 1),
        "cpu_ms_per_event": cpu["naive receiver"] * 1000 / max(events, 1),
        "cpu_ms_per_event_with_emulators": sum(cpu.values()) * 1000 / max(events, 1),
        "records_per_day_at_100k_calls": records_per_day(calls_per_1k),
    }
    detail = {"events": events, "records": stats["records"], "seconds": elapsed, "failures": stats["failures"],
              "workers_reporting": stats.get("workers"), "salesforce_calls": sf_calls, "stripe_calls": stripe_calls,
              "cpu_s": {k: round(v, 2) for k, v in cpu.items()}, **extra}
    return Phase(figures, detail)
