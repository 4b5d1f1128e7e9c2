"""Phase 1 of the benchmark: paysync end to end — `LocalPipeline` on a private KRaft broker, the Stripe simulator
delivering `--events` signed webhooks while the pollers run, measured until everything is in Salesforce; the
Salesforce emulator has the benchmark's latency model (`bench_common.sf_knobs`). `run_paysync` with `events` and
`rate` is also the fixed-rate latency phase (`latency_phase`). Each pipeline is warmed first
(`bench_common.start_pipeline`) and only the window after its warm-up is measured."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_common import (Lag, compiler_cpu_since, compiler_threads_cpu, drive, histogram_quantiles, metric_sum,
                          proc_cpu, records_per_day, say, scrape, scrape_delta, sf_knobs, stage_lags, start_pipeline)

from ops.pipeline import LocalPipeline, PipelineOptions, Quiet


@dataclass
class Phase:
    """What one side of the comparison measured."""

    figures: dict[str, Any]
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Settled:
    """What the settle loop saw: webhooks accepted (and when the count last moved), lag per stage, the end."""

    accepted: float = 0.0
    last_accept: float = field(default_factory=time.monotonic)
    lag_area: dict[str, float] = field(default_factory=lambda: {"streams": 0.0, "sink": 0.0})  # record-seconds
    max_lag: Counter[str] = field(default_factory=Counter)
    end: float | None = None
    probes: int = 0  # lag probes (once a second)
    cpu_seen: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (component, last CPU s read)


def cpu_used(cpu0: dict[str, float], seen: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per component since `cpu0`, from the last reading of every process it had: a component the
    supervisor restarted counts its dead process (up to its last reading) as well as the new one."""
    out = {name: -start for name, start in cpu0.items()}
    for name, value in seen.values():
        out[name] = out.get(name, 0.0) + value
    return out


def _sample_cpu(p: LocalPipeline, seen: _Settled, fixed: dict[str, int]) -> None:
    """Read the CPU of `fixed` pids and of every supervised component's current process into `seen.cpu_seen`."""
    assert p.supervisor is not None
    pids = dict(fixed)
    for name, c in p.supervisor.components.items():
        if c.process is not None:
            pids[name] = c.process.pid
    for name, pid in pids.items():
        value = proc_cpu(pid)
        if value > 0 or pid not in seen.cpu_seen:
            seen.cpu_seen[pid] = (name, value)


def _watch_first_accept(port: int, before: float, first: dict[str, float], stop: threading.Event) -> None:
    """Record in `first["t"]` when the receiver acknowledged its first webhook after `before` (acknowledged by
    then: the warm-up's), to 50 ms."""
    while not stop.is_set():
        try:
            if metric_sum(scrape(port), "paysync_webhook_accepted") > before:
                first["t"] = time.monotonic()
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)


def _settle(p: LocalPipeline, args: argparse.Namespace, lag: Lag, events: int, seen: _Settled,
            fixed: dict[str, int], accepted0: float) -> _Settled:
    """Once a second: accepted webhooks (since `accepted0`), CPU and both stages' lag, until the simulator is done
    and both have had zero lag for `--quiet` s, or `--timeout` runs out (then `end` stays None). One lag probe is
    ~4 broker requests (`stage_lags`); `lag_area` is in record-seconds."""
    assert p.stripe is not None
    deadline = time.monotonic() + args.timeout
    quiet = Quiet(args.quiet)
    last_probe = last_say = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        _sample_cpu(p, seen, fixed)
        st = p.stripe.status()
        lags = stage_lags(p, lag)
        if None in lags.values():
            continue
        now_acc = metric_sum(scrape(p.ports["webhook_metrics"]), "paysync_webhook_accepted") - accepted0
        now = time.monotonic()
        if now_acc != seen.accepted:
            seen.accepted, seen.last_accept = now_acc, now
        seen.probes += 1
        for k, v in lags.items():
            seen.lag_area[k] += (v or 0) * (now - last_probe)
            seen.max_lag[k] = max(seen.max_lag[k], v or 0)
        last_probe = now
        if quiet.update(bool(st.get("done")) and not any(lags.values()), now):
            seen.end = quiet.since
            break
        if now - last_say >= 5:
            say(f"  paysync: webhooks {seen.accepted:>7.0f}/{events} · lag streams {lags['streams']:>6} "
                f"sink {lags['sink']:>6}")
            last_say = now
    return seen


def run_paysync(args: argparse.Namespace, workdir: Path, events: int | None = None, rate: float | None = None,
                name: str = "paysync", warmup_events: int | None = None) -> Phase:
    """Warm a fresh pipeline (in `workdir/name`) with `warmup_events` (default `--warmup-events`), then drive
    `events` (default `--events`) at `rate` events/s (default `--rate`) and measure that window alone until
    everything is in Salesforce: every count and CPU figure is a difference from the window's start."""
    events = args.events if events is None else events
    rate = args.rate if rate is None else rate
    warmup_events = args.warmup_events if warmup_events is None else warmup_events
    options = PipelineOptions(workdir=workdir / name, seed=args.seed, poll_interval_s=args.poll_interval,
                              simulator_knobs={"delivery_concurrency": args.delivery_concurrency},
                              emulator_knobs=sf_knobs(args), stream_workers=args.stream_workers)
    p = LocalPipeline(options)
    try:
        started = start_pipeline(p, warmup_events, rate, args.quiet, args.timeout,
                                 lambda s: say(f"  {name}: {s}"))
        assert p.stripe is not None and p.supervisor is not None
        broker_pid = started.broker_pid
        before = {"sf": p.sf.stats()["calls"], "stripe": int(p.stripe.stats().get("total", 0)),
                  "sink": scrape(p.ports["sink_metrics"]),
                  "accepted": metric_sum(scrape(p.ports["webhook_metrics"]), "paysync_webhook_accepted"),
                  "restarts": {n: c.restarts for n, c in p.supervisor.components.items()}}
        pids = {"broker": broker_pid, **{n: c.process.pid for n, c in p.supervisor.components.items()}}  # type: ignore[union-attr]
        external = {"salesforce emulator": p.sf.process.pid, "stripe simulator": p.stripe.process.pid}
        cpu0 = {n: proc_cpu(pid) for n, pid in {**pids, **external}.items()}
        jit0 = compiler_threads_cpu(broker_pid)
        lag = Lag(p.bootstrap)
        first: dict[str, float] = {}
        stop_watch = threading.Event()
        watcher = threading.Thread(target=_watch_first_accept,
                                   args=(p.ports["webhook_metrics"], before["accepted"], first, stop_watch),
                                   daemon=True)
        watcher.start()
        say(f"  {name}: driving {events} events (rate {rate or 'max'}/s, "
            f"delivery concurrency {args.delivery_concurrency})")
        drive(p, started, events, rate)
        if "poll" not in pids:  # a cold run's pollers start with its traffic
            pids["poll"] = p.supervisor.components["poll"].process.pid  # type: ignore[union-attr]
            cpu0["poll"] = proc_cpu(pids["poll"])
        seen = _settle(p, args, lag, events,
                       _Settled(cpu_seen={pid: (n, cpu0[n]) for n, pid in {**pids, **external}.items()}),
                       {"broker": broker_pid, **external}, before["accepted"])
        stop_watch.set()
        finished = seen.end is not None
        end = seen.end or time.monotonic()
        _sample_cpu(p, seen, {"broker": broker_pid, **external})
        cpu = cpu_used(cpu0, seen.cpu_seen)
        broker_jit = compiler_cpu_since(jit0, compiler_threads_cpu(broker_pid))
        restarts = {n: c.restarts - before["restarts"].get(n, 0) for n, c in p.supervisor.components.items()
                    if c.restarts - before["restarts"].get(n, 0)}
        sink_m = scrape_delta(scrape(p.ports["sink_metrics"]), before["sink"])
        stripe_calls = int(p.stripe.stats().get("total", 0)) - before["stripe"]
        sf_after = p.sf.stats()["calls"]
        sf_calls = {k: sf_after.get(k, 0) - before["sf"].get(k, 0) for k in sf_after}
        lag.close()
    finally:
        p.stop()
    measured = {"cpu": cpu, "broker_jit_cpu_s": broker_jit, "external": external, "sf_calls": sf_calls,
                "stripe_calls": stripe_calls, "restarts": restarts, "finished": finished, "end": end,
                "warmup": started.warmup}
    return _phase(seen, first, sink_m, measured)


def _phase(seen: _Settled, first: dict[str, float], sink_m: dict[str, Any], measured: dict[str, Any]) -> Phase:
    """paysync's figures from what the run measured (time runs from the first acknowledged webhook)."""
    finished, end = measured["finished"], measured["end"]
    cpu, external, sf_calls = measured["cpu"], measured["external"], measured["sf_calls"]
    accepted, stripe_calls = seen.accepted, measured["stripe_calls"]
    records = metric_sum(sink_m, "paysync_sink_records", result="upserted")
    t_first = first.get("t", end)
    elapsed = max(end - t_first, 1e-9)
    q = histogram_quantiles(sink_m, "paysync_end_to_end_seconds")
    components_cpu = sum(v for n, v in cpu.items() if n not in external)
    steady_cpu = components_cpu - measured["broker_jit_cpu_s"]  # less what a long-running broker's JIT would not use
    api_calls = sum(v for k, v in sf_calls.items() if k != "auth")
    calls_per_1k = api_calls * 1000 / max(records, 1)
    figures = {
        "events_per_s": accepted / elapsed, "p50_latency_s": q["p50"], "p99_latency_s": q["p99"],
        "salesforce_calls_per_1k": calls_per_1k, "stripe_calls_per_1k": stripe_calls * 1000 / max(accepted, 1),
        "cpu_ms_per_event": components_cpu * 1000 / max(accepted, 1),
        "cpu_ms_per_event_without_broker_jit": steady_cpu * 1000 / max(accepted, 1),
        "cpu_ms_per_event_with_emulators": sum(cpu.values()) * 1000 / max(accepted, 1),
        "records_per_day_at_100k_calls": records_per_day(calls_per_1k),
    }
    detail = {"events": int(accepted), "records": int(records), "seconds": elapsed, "finished": finished,
              "offered_events_per_s": accepted / max(seen.last_accept - t_first, 1e-9),
              "latency_share_le_2s": q["share_le_2s"], "latency_observations": q["count"],
              "salesforce_calls": sf_calls, "stripe_calls": stripe_calls,
              "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
              "broker_jit_cpu_s": round(measured["broker_jit_cpu_s"], 2), "latency_share_le_1s": q.get("share_le_1s"),
              "max_lag": dict(seen.max_lag), "lag_area_record_s": {k: round(v, 1) for k, v in seen.lag_area.items()},
              "lag_probes": seen.probes, "lag_probes_per_s": seen.probes / elapsed, "warmup": measured["warmup"],
              "restarts": measured["restarts"],
              "slowest_stage": max(("streams", "sink"), key=lambda k: seen.lag_area[k])}
    return Phase(figures, detail)


def latency_phase(args: argparse.Namespace, workdir: Path, rate: float) -> dict[str, Any]:
    """paysync at a fixed offered `rate` for `--latency-seconds` (a fresh pipeline, warmed with
    `--latency-warmup-seconds` of the same rate): p50/p99 webhook → Salesforce under the latency model; a failed
    phase is reported, not fatal."""
    events, warmup = int(rate * args.latency_seconds), int(rate * args.latency_warmup_seconds)
    say(f"latency phase: {events} events at {rate:g} events/s offered (warm-up {warmup})")
    try:
        ph = run_paysync(args, workdir, events=events, rate=rate, name=f"latency-{rate:g}", warmup_events=warmup)
    except Exception as exc:  # noqa: BLE001 - keep the other phases; the report says this one failed
        say(f"  latency phase failed: {type(exc).__name__}: {exc}")
        return {"rate": rate, "events": events, "error": f"{type(exc).__name__}: {exc}", "p50_s": None,
                "p99_s": None, "warmup": {"events": warmup}}
    d = ph.detail
    out = {"rate": rate, "events": d["events"], "records": d["records"], "finished": d["finished"],
           "offered_events_per_s": d["offered_events_per_s"], "p50_s": ph.figures["p50_latency_s"],
           "p99_s": ph.figures["p99_latency_s"], "share_le_1s": d["latency_share_le_1s"],
           "share_le_2s": d["latency_share_le_2s"], "salesforce_calls_per_1k": ph.figures["salesforce_calls_per_1k"],
           "cpu_ms_per_event": ph.figures["cpu_ms_per_event"], "max_lag": d["max_lag"], "warmup": d["warmup"],
           "lag_probes_per_s": d["lag_probes_per_s"]}
    say(f"  -> p50 {out['p50_s']} s, p99 {out['p99_s']} s at {rate:g}/s")
    return out
