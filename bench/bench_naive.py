"""Phase 2 of the benchmark: the naive baseline (`bench/naive_receiver.py`, one synchronous worker, one REST upsert
per record) with its own Salesforce emulator, the same simulator seed and traffic shape."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from bench_common import REPO, TRAFFIC, pct, proc_cpu, say
from bench_paysync import Phase
from naive_receiver import NaiveSettings

from emulators.salesforce_emulator import start_emulator
from emulators.stripe_simulator.handle import start_simulator
from ops.pipeline import WEBHOOK_SECRETS, LocalPipeline
from paysync.net import free_port
from paysync.settings import settings_env


def run_naive(args: argparse.Namespace, workdir: Path) -> Phase:
    """Drive `--naive-events` through the baseline; its figures in the same terms as paysync's."""
    sf = start_emulator(workdir / "naive" / "salesforce.db", daily_limit=50_000_000)
    port = free_port()
    creds = sf.credentials
    env = {**os.environ,
           **settings_env(NaiveSettings, naive_port=port, webhook_secrets=",".join(WEBHOOK_SECRETS),
                          salesforce_login_url=sf.base_url, salesforce_client_id=creds["client_id"],
                          salesforce_client_secret=creds["client_secret"], salesforce_ca_bundle=sf.ca_cert_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "naive_receiver.py")], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(workdir / "naive-receiver.log", "ab"))  # noqa: SIM115
    sim = None
    try:
        LocalPipeline.wait_http(f"http://127.0.0.1:{port}/stats", 60)
        sim = start_simulator(seed=args.seed, webhook_url=f"http://127.0.0.1:{port}/webhooks/stripe",
                              webhook_secrets=list(WEBHOOK_SECRETS), clock="realtime",
                              delivery_concurrency=args.delivery_concurrency, timeout=30.0)
        sf_before = sf.stats()["calls"]
        cpu0 = {"naive receiver": proc_cpu(proc.pid), "salesforce emulator": proc_cpu(sf.process.pid),
                "stripe simulator": proc_cpu(sim.process.pid)}
        say(f"  naive: driving {args.naive_events} events (same seed and traffic shape)")
        sim.generate(wait=True, timeout=args.timeout, events=args.naive_events, rate=args.rate, **TRAFFIC)
        cpu = {"naive receiver": proc_cpu(proc.pid) - cpu0["naive receiver"],
               "salesforce emulator": proc_cpu(sf.process.pid) - cpu0["salesforce emulator"],
               "stripe simulator": proc_cpu(sim.process.pid) - cpu0["stripe simulator"]}
        stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=30).json()
        sim_status = sim.status()
        stripe_calls = int(sim.stats().get("total", 0))
        sf_after = sf.stats()["calls"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        if sim is not None:
            sim.stop()
        sf.stop()
    sf_calls = {k: sf_after.get(k, 0) - sf_before.get(k, 0) for k in sf_after}
    api_calls = sum(v for k, v in sf_calls.items() if k != "auth")
    events = int(stats["requests"])
    elapsed = max((stats["last_done"] or 0) - (stats["first_receive"] or 0), 1e-9)
    lat = sorted(stats["latencies"])
    figures = {
        "events_per_s": events / elapsed, "p50_latency_s": pct(lat, 50), "p99_latency_s": pct(lat, 99),
        "salesforce_calls_per_1k": api_calls * 1000 / max(stats["records"], 1),
        "stripe_calls_per_1k": stripe_calls * 1000 / max(events, 1),
        "cpu_s_per_1k": cpu["naive receiver"] * 1000 / max(events, 1),
    }
    detail = {"events": events, "records": stats["records"], "seconds": elapsed, "failures": stats["failures"],
              "deliveries": sim_status.get("deliveries"), "salesforce_calls": sf_calls, "stripe_calls": stripe_calls,
              "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
              "cpu_s_per_1k_with_emulators": sum(cpu.values()) * 1000 / max(events, 1)}
    return Phase(figures, detail)
