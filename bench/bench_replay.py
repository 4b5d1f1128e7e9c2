"""Phase 3 of the benchmark: `--replay-events` generated events published as envelopes onto a fresh `stripe.events`,
then fresh stream worker(s) (new app id, offset 0) and a sink drain them into a fresh emulator with the benchmark's
Salesforce latency model (`bench_common.sf_knobs`, as the other phases); the stream workers' CPU, RSS and table size
on disk are measured, and the slowest stage is profiled with py-spy while it works."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_common import REPO, Lag, metric_sum, proc_cpu, proc_rss_mib, say, scrape, sf_knobs, sf_latency_model
from confluent_kafka import Producer
from profile_layers import parse_raw, summarise

from emulators.salesforce_emulator import start_emulator
from ops.pipeline import Quiet
from ops.supervisor import Supervisor
from paysync.codec import AvroCodec
from paysync.net import free_port
from paysync.produce import produce_waiting
from paysync.records import ENVELOPE
from paysync.settings import KafkaConnection, TopicSettings, settings_env
from paysync.topics import SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS, create_topics
from producers.envelope import envelope
from sinks.settings import SalesforceSettings, SinkSettings
from streams.settings import StreamSettings


def publish_events(bootstrap: str, topic: str, path: Path) -> int:
    """Publish every JSON line of `path` as a `source=webhook` envelope; returns the count."""
    codec = AvroCodec()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
                         "compression.type": "lz4", "acks": "all"})
    count = 0
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            text = line.rstrip("\n")
            key, record = envelope(json.loads(text), text, "webhook", int(time.time() * 1000))
            value = codec.encode_record(ENVELOPE, record)
            produce_waiting(producer, topic, value, key=key, poll_s=0.05)
            count += 1
            if count % 10_000 == 0:
                producer.poll(0)
    if producer.flush(300):
        raise RuntimeError("replay events were not all acknowledged")
    return count


def py_spy_top(pid: int, seconds: float, out: Path, top: int = 15) -> dict[str, Any]:
    """py-spy record (raw stacks) on `pid`: the share of each layer and the functions with the most own and
    total samples, as [name, layer, share] (`profile_layers.summarise`)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        return {"error": "py-spy not installed (.venv/bin/pip install -e '.[bench]')"}
    res = subprocess.run([exe, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50", "-f", "raw",
                          "--nonblocking", "-o", str(out)], capture_output=True, text=True, timeout=seconds + 60)
    if res.returncode != 0 or not out.exists():
        return {"error": (res.stderr or res.stdout)[-500:]}
    summary = summarise(parse_raw(out.read_text(encoding="utf-8", errors="replace")), top)
    return {"samples": summary.samples, "layers": summary.layers, "own": summary.own, "inclusive": summary.total}


@dataclass
class StreamProbe:
    """The stream workers' CPU (every process a worker had: the supervisor may restart one) and RSS, read from
    /proc at every `read`; CPU marked when processing starts and when the streams catch up."""

    cpu0: float = 0.0
    cpu_seen: dict[int, float] = field(default_factory=dict)  # pid -> last CPU seconds read
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (s since start, MiB of all workers)
    marks: dict[str, float] = field(default_factory=dict)  # name -> CPU seconds at the mark
    marked_at: dict[str, float] = field(default_factory=dict)  # name -> s since start
    elapsed: float = 0.0

    def read(self, sup: Supervisor, elapsed: float, ports: dict[str, int]) -> None:
        """Read every worker's CPU and RSS; until one has processed a record, scrape their metrics (`ports`) and
        mark "working" at the first one (committed offsets can lag far behind: the first commit may wait for the
        worker's outputs to be durable)."""
        self.elapsed, rss_total = elapsed, 0.0
        if "working" not in self.marks and any(_processed(ports[name]) > 0 for name in ports):
            self.mark("working")
        for name, c in sup.components.items():
            if not name.startswith("stream") or c.process is None:
                continue
            cpu, rss = proc_cpu(c.process.pid), proc_rss_mib(c.process.pid)
            if cpu > 0:
                self.cpu_seen[c.process.pid] = cpu
            if rss is not None:
                rss_total += rss
                self.peak_rss_mib[name] = max(self.peak_rss_mib.get(name, 0.0), rss)
        if not self.rss_samples or elapsed - self.rss_samples[-1][0] >= 5:
            self.rss_samples.append((round(elapsed, 1), round(rss_total, 1)))

    def cpu(self) -> float:
        """CPU seconds of the workers since the probe began."""
        return sum(self.cpu_seen.values()) - self.cpu0

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, self.cpu())
        self.marked_at.setdefault(name, self.elapsed)


def _processed(port: int) -> float:
    """A stream worker's input records processed so far (0 while its metrics are not up)."""
    try:
        return metric_sum(scrape(port), "paysync_stream_processed")
    except httpx.HTTPError:
        return 0.0


def _publish_generated(args: argparse.Namespace, workdir: Path, bootstrap: str, prefix: str) -> int:
    """Generate `--replay-events` events offline, publish them as envelopes onto the prefixed `stripe.events`."""
    gen = workdir / "replay-events.jsonl"
    say(f"  replay: generating {args.replay_events} events offline")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "ops.cli", "emulate", "stripe", "generate", "--events",
                    str(args.replay_events), "--seed", str(args.seed), "--out", str(gen)], check=True, cwd=REPO)
    create_topics({"bootstrap.servers": bootstrap}, prefix, args.partitions)
    n = publish_events(bootstrap, STRIPE_EVENTS.full_name(prefix), gen)
    say(f"  replay: {n} envelopes on {STRIPE_EVENTS.full_name(prefix)} ({time.monotonic() - t0:.0f} s incl. "
        f"generation)")
    gen.unlink()
    return n


def _components_env(bootstrap: str, prefix: str, partitions: int, app_id: str, group: str, sf: Any) -> dict[str, str]:
    """The stream worker's and the sink's environment, named by the settings classes that read it."""
    creds = sf.credentials
    return {**os.environ,
            **settings_env(KafkaConnection, bootstrap_servers=bootstrap),
            **settings_env(TopicSettings, prefix=prefix, partitions=partitions),
            **settings_env(StreamSettings, stream_app_id=app_id),
            **settings_env(SinkSettings, sink_group_id=group),
            **settings_env(SalesforceSettings, salesforce_login_url=sf.base_url,
                           salesforce_auth_flow="client_credentials", salesforce_client_id=creds["client_id"],
                           salesforce_client_secret=creds["client_secret"], salesforce_ca_bundle=sf.ca_cert_path)}


def _start_profile(sup: Supervisor, stage: str, args: argparse.Namespace,
                   workdir: Path) -> tuple[str, dict[str, Any], threading.Thread]:
    """py-spy on `stage` in a thread: (stage, the dict it fills, the thread)."""
    holder: dict[str, Any] = {}
    pid = sup.components[stage].process.pid  # type: ignore[union-attr]

    def profile_it(pid: int = pid, stage: str = stage, holder: dict[str, Any] = holder) -> None:
        try:
            holder.update(py_spy_top(pid, args.profile_seconds, workdir / f"profile-{stage}.txt"))
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            holder["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=profile_it, daemon=True)
    thread.start()
    return stage, holder, thread


def _watch(args: argparse.Namespace, workdir: Path, sup: Supervisor, lag: Lag,
           lags: tuple[str, list[str], str, list[str]], n: int, slowest: str, started: float,
           probe: tuple[StreamProbe, dict[str, int]]) -> dict[str, Any]:
    """Poll both stages' lag (and `probe` the stream workers) every 0.5 s until both have been zero for `--quiet` s
    or `--replay-timeout` runs out; start the profile of the slowest stage once the streams have begun. Returns
    the moments seen."""
    stream_group, in_topics, sink_group, out_topic = lags
    seen: dict[str, Any] = {"streams_done_at": None, "end": None, "profile": None, "first_progress": None,
                            "first_commit": None}
    stream_probe, stream_ports = probe
    quiet = Quiet(args.quiet)
    deadline = started + args.replay_timeout
    last_print = 0.0
    while time.monotonic() < deadline:
        stream_probe.read(sup, time.monotonic() - started, stream_ports)
        if seen["first_progress"] is None and "working" in stream_probe.marks:
            seen["first_progress"] = started + stream_probe.marked_at["working"]
        got = lag.many({stream_group: in_topics, sink_group: out_topic})  # one probe: ~4 broker requests
        s_lag, k_lag = got[stream_group], got[sink_group]
        now = time.monotonic()
        if s_lag is None or k_lag is None:
            time.sleep(0.5)
            continue
        if seen["profile"] is None and seen["first_progress"] is not None:
            seen["profile"] = _start_profile(sup, "stream0" if slowest == "streams" else "sink", args, workdir)
        if seen["first_commit"] is None and s_lag < n:
            seen["first_commit"] = now
        if s_lag == 0 and seen["streams_done_at"] is None:
            seen["streams_done_at"] = now
            stream_probe.mark("caught_up")
        if quiet.update(s_lag == 0 and k_lag == 0, now):
            seen["end"] = quiet.since
            break
        if now - last_print >= 10:
            say(f"  replay: {now - started:5.0f} s · lag streams {s_lag:>8} sink {k_lag:>7}")
            last_print = now
        time.sleep(0.5)
    return seen


def run_replay(args: argparse.Namespace, workdir: Path, bootstrap: str, slowest: str) -> dict[str, Any]:
    """Replay `--replay-events` from offset 0 through fresh workers; figures incl. the 1,000,000-event estimate."""
    prefix = f"r{uuid.uuid4().hex[:8]}."
    n = _publish_generated(args, workdir, bootstrap, prefix)
    sf = start_emulator(workdir / "replay" / "salesforce.db", **sf_knobs(args))
    app_id, group = f"replay-{uuid.uuid4().hex[:6]}", f"{prefix}replay-sink"
    env = _components_env(bootstrap, prefix, args.partitions, app_id, group, sf)
    sup = Supervisor(workdir / "replay" / "logs", base_env=env)
    ports = {**{f"stream{i}": free_port() for i in range(args.stream_workers)}, "sink": free_port()}
    lag = Lag(bootstrap)
    result: dict[str, Any] = {"events": n, "sf_latency_model": sf_latency_model(args)}
    probe = StreamProbe()
    try:
        started = time.monotonic()
        for i in range(args.stream_workers):
            sup.add(f"stream{i}", ["stream", "--data-dir", str(workdir / "replay" / f"stream{i}"),
                                   "--metrics-port", str(ports[f"stream{i}"])])
        sup.add("sink", ["sink", "--metrics-port", str(ports["sink"])])
        in_topics = [STRIPE_EVENTS.full_name(prefix), STRIPE_BALANCE_TRANSACTIONS.full_name(prefix)]
        out_topic = [SALESFORCE_UPSERTS.full_name(prefix)]
        seen = _watch(args, workdir, sup, lag, (f"{prefix}{app_id}", in_topics, group, out_topic), n, slowest,
                      started, (probe, {k: v for k, v in ports.items() if k.startswith("stream")}))
        end, first_progress, streams_done_at = seen["end"], seen["first_progress"], seen["streams_done_at"]
        elapsed = (end or time.monotonic()) - started
        left = lag.of(f"{prefix}{app_id}", in_topics)
        processed = n - (left if left is not None else n)
        try:
            sink_m = scrape(ports["sink"])
            result["records"] = int(metric_sum(sink_m, "paysync_sink_records", result="upserted"))
        except httpx.HTTPError:
            result["records"] = None
        startup = (first_progress - started) if first_progress else elapsed
        result.update(finished=end is not None, seconds=elapsed, startup_seconds=startup,
                      first_commit_seconds=(seen["first_commit"] - started) if seen["first_commit"] else None,
                      streams_seconds=(streams_done_at - started) if streams_done_at else None,
                      processed=processed, events_per_s=processed / max(elapsed, 1e-9),
                      salesforce_calls=sf.stats()["calls"])
        if seen["profile"] is not None:
            seen["profile"][2].join(args.profile_seconds + 90)
            result["profile"] = {"stage": seen["profile"][0], **seen["profile"][1]}
    finally:
        lag.close()
        sup.stop()
        sf.stop()
    state = sum(_du(workdir / "replay" / f"stream{i}") for i in range(args.stream_workers))
    result.update(stream_figures(probe, result["processed"], state))
    return _with_estimates(result, n)


def _du(path: Path) -> int:
    """Bytes of the files under `path` (0 when it is missing)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def stream_figures(probe: StreamProbe, processed: int, state_bytes: int) -> dict[str, Any]:
    """The stream workers per input event: CPU while they worked (first record processed → caught up, or the end),
    peak RSS, RSS over the run (first → last from the first record on), and the tables' size on disk after they
    stopped, per 1,000,000 events (linear)."""
    working_cpu = probe.marks.get("caught_up", probe.cpu()) - probe.marks.get("working", 0.0)
    after_start = [mib for t, mib in probe.rss_samples if mib > 0 and t >= probe.marked_at.get("working", 0.0)]
    return {"stream_cpu_s": probe.cpu(), "stream_cpu_s_working": working_cpu,
            "stream_cpu_us_per_record": working_cpu * 1e6 / processed if processed else None,
            "stream_peak_rss_mib": max(probe.peak_rss_mib.values(), default=None),
            "stream_peak_rss_mib_by_worker": probe.peak_rss_mib,
            "stream_rss_mib_first_last": [after_start[0], after_start[-1]] if after_start else None,
            "stream_rss_mib_samples": probe.rss_samples,
            "stream_state_bytes": state_bytes,
            "stream_state_mib_per_1m_events": state_bytes / 2**20 * 1_000_000 / processed if processed else None}


def _with_estimates(result: dict[str, Any], n: int) -> dict[str, Any]:
    """Calls per 1,000 records and the 1,000,000-event time (start-up once + the measured working rate)."""
    calls = sum(v for k, v in result["salesforce_calls"].items() if k != "auth")
    result["salesforce_calls_per_1k"] = calls * 1000 / result["records"] if result.get("records") else None
    # start-up (Faust joining, tables opening) is paid once; the rest scales with the events
    working = max(result["seconds"] - result["startup_seconds"], 1e-9)
    result["replay_1m_s"] = (result["startup_seconds"] + working * 1_000_000 / result["processed"]
                             if result["processed"] else None)
    result["replay_1m_extrapolated"] = not (result["finished"] and n >= 1_000_000)
    streams = result.get("streams_seconds")  # the stream workers alone, when they caught up
    result["replay_streams_1m_s"] = (result["startup_seconds"] + (streams - result["startup_seconds"]) * 1_000_000 / n
                                     if streams and n else None)
    return result


def stream_summary(replay: dict[str, Any]) -> dict[str, Any]:
    """`results.json`'s `stream`: the stream workers' figures from the replay (None where it did not run)."""
    return {"cpu_us_per_record": replay.get("stream_cpu_us_per_record"),
            "peak_rss_mib": replay.get("stream_peak_rss_mib"),
            "rss_mib_first_last": replay.get("stream_rss_mib_first_last"),
            "state_mib_per_1m_events": replay.get("stream_state_mib_per_1m_events"),
            "replay_streams_1m_s": replay.get("replay_streams_1m_s")}
