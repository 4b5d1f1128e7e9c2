"""Broker cost per event (a benchmark, not a test): broker CPU and the broker's request rates by type and client.

    .venv/bin/python bench/broker_requests.py [--events 6000] [--rate 100] [--idle-seconds 15] [--by-client]
                                              [--env PAYSYNC_X=Y ...] [--label before] [--json out.json]

Runs `LocalPipeline` (private KRaft broker, both emulators, every component, the Salesforce emulator with the
benchmark's latency model), warms it with `--warmup-events` (`bench_common.start_pipeline`: a fresh broker's JIT
compiler otherwise takes about half of its CPU in a short run), then drives `--events` webhooks at `--rate`
events/s (`bench_common.drive`, `TRAFFIC`) while the pollers run. Windows measured: `--idle-seconds` of the warm
pipeline with no traffic, then the workload from the first event driven until the simulator is done and both stages
have had zero lag for `--quiet` s. The lag probe (~4 broker requests, `bench_common.stage_lags`) runs only once the
simulator is done, once a second: the benchmark's own requests stay a small part of what it measures (shown as
`bench` with `--by-client`).

The broker's counters are read over JMX without touching its launch: a small Java helper (written next to the
workdir, run with `java File.java`) attaches to the broker's pid (Attach API), starts its local management agent and
reads `kafka.network:type=RequestMetrics,name=RequestsPerSec,request=*` (Count, summed over versions) and
`kafka.server:type=BrokerTopicMetrics,name=Total{Produce,Fetch}RequestsPerSec,topic=*` at each window's edges.
`--by-client` also turns the broker's `kafka.request.logger` to DEBUG (the `Log4jController` MBean) for the
workload and counts its "Completed request" lines by the component owning the connection's client port (found in
/proc) and request type; the logging costs broker CPU, so the CPU figures of such a run are marked as not
comparable. `--env` sets component settings (to compare configurations without editing code).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from bench_common import (Lag, drive, histogram_quantiles, metric_sum, proc_cpu, say, scrape, scrape_delta, stage_lags,
                          start_pipeline, thread_cpu)
from bench_paysync import cpu_used

from ops.pipeline import LocalPipeline, PipelineOptions, Quiet

_JAVA = r"""
import com.sun.tools.attach.VirtualMachine;
import java.io.*;
import javax.management.*;
import javax.management.remote.*;

public class BrokerJmx {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address = vm.startLocalManagementAgent();
        vm.detach();
        MBeanServerConnection m = JMXConnectorFactory.connect(new JMXServiceURL(address)).getMBeanServerConnection();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        System.out.println("READY");
        System.out.flush();
        while ((line = in.readLine()) != null) {
            String[] cmd = line.trim().split(" ");
            if (cmd[0].equals("loglevel")) {
                m.invoke(new ObjectName("kafka:type=kafka.Log4jController"), "setLogLevel",
                         new Object[]{cmd[1], cmd[2]}, new String[]{"java.lang.String", "java.lang.String"});
            } else {
                dump(m, "kafka.network:type=RequestMetrics,name=RequestsPerSec,*", "request");
                dump(m, "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec,*", "topic");
                dump(m, "kafka.server:type=BrokerTopicMetrics,name=TotalFetchRequestsPerSec,*", "topic");
                dump(m, "kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,*", "topic");
            }
            System.out.println("END");
            System.out.flush();
        }
    }

    static void dump(MBeanServerConnection m, String pattern, String key) throws Exception {
        for (ObjectName n : m.queryNames(new ObjectName(pattern), null)) {
            String tag = n.getKeyProperty(key);
            if (tag == null) continue;
            Object count = m.getAttribute(n, "Count");
            System.out.println(n.getKeyProperty("name") + "\t" + tag + "\t" + count);
        }
    }
}
"""


class BrokerJmx:
    """The Java helper attached to the broker: `counts()` -> {(metric, tag): count}; `log_level(logger, level)`."""

    def __init__(self, pid: int, workdir: Path) -> None:
        src = workdir / "BrokerJmx.java"
        src.write_text(_JAVA, encoding="utf-8")
        self.proc = subprocess.Popen(["java", "-Xmx64m", str(src), str(pid)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"JMX helper did not attach to the broker: {line!r}")

    def _ask(self, command: str) -> list[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        for line in self.proc.stdout:
            if line.strip() == "END":
                return lines
            lines.append(line.rstrip("\n"))
        raise RuntimeError("JMX helper exited")

    def counts(self) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for line in self._ask("counts"):
            name, tag, count = line.split("\t")
            out[(name, tag)] += int(count)
        return out

    def log_level(self, logger: str, level: str) -> None:
        self._ask(f"loglevel {logger} {level}")

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- which component owns a client connection -------------------------------------------------------------------

def _socket_inodes(port: int) -> dict[str, int]:
    """socket inode -> local port of every TCP connection to 127.0.0.1:`port` (from /proc/net/tcp)."""
    out: dict[str, int] = {}
    remote = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == remote:
            out[fields[9]] = int(fields[1].split(":")[1], 16)
    return out


def client_ports(pids: dict[str, int], broker_port: int) -> dict[int, str]:
    """Client port -> component name, for every connection the components' processes hold to the broker."""
    inodes = _socket_inodes(broker_port)
    owners: dict[int, str] = {}
    for name, pid in pids.items():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and (inode := target[8:-1]) in inodes:
                owners[inodes[inode]] = name
    return owners


_LINE = re.compile(r'Completed request:.*?"requestApiKeyName":"(\w+)".*?"clientId":"([^"]*)"'
                   r'|Completed request:.*?"clientId":"([^"]*)".*?"requestApiKeyName":"(\w+)"')
_CONN = re.compile(r'"connection":"127\.0\.0\.1:\d+-127\.0\.0\.1:(\d+)-')


class RequestLogCounter:
    """Tails the broker's server.log (it rolls at 20 MB) and counts request lines by (owner, client id, api)."""

    def __init__(self, log: Path, owner_of: dict[int, str]) -> None:
        self.log, self.owner_of = log, owner_of
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        f = open(self.log, encoding="utf-8", errors="replace")  # noqa: SIM115 - reopened on roll
        f.seek(0, os.SEEK_END)
        inode = os.fstat(f.fileno()).st_ino
        buf = ""
        while not self.stop.is_set():
            chunk = f.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    self._count(line)
                continue
            try:
                if os.stat(self.log).st_ino != inode:  # rolled: read the new file from its start
                    f.close()
                    f = open(self.log, encoding="utf-8", errors="replace")  # noqa: SIM115
                    inode = os.fstat(f.fileno()).st_ino
                    continue
            except OSError:
                pass
            self.stop.wait(0.2)
        f.close()

    def _count(self, line: str) -> None:
        m = _LINE.search(line)
        if m is None:
            return
        api, client = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        c = _CONN.search(line)
        owner = self.owner_of.get(int(c.group(1)), "?") if c else "?"
        self.counts[(owner, client, api)] += 1


def java_thread_names(pid: int) -> dict[str, str]:
    """Thread id -> full Java thread name (`jcmd Thread.print`; /proc's comm keeps only 15 characters)."""
    text = subprocess.run(["jcmd", str(pid), "Thread.print"], capture_output=True, text=True, check=False).stdout
    return {str(int(m.group(2), 16)): m.group(1) for m in re.finditer(r'^"([^"]+)".*? nid=0x([0-9a-f]+)', text, re.M)}


# --- where the broker's Java threads spend their time (JFR execution samples) --------------------------------------

_MARKERS = {  # inclusive share of samples whose stack holds the frame
    "produce (KafkaApis.handleProduceRequest)": "KafkaApis.handleProduceRequest",
    "fetch (KafkaApis.handleFetchRequest)": "KafkaApis.handleFetchRequest",
    "record validation (LogValidator)": "LogValidator.",
    "lz4": "lz4",
    "log append (UnifiedLog.append)": "UnifiedLog.append",
    "delayed ops (purgatory)": "DelayedOperation",
    "network threads (SocketServer Processor)": "network.Processor.run",
    "request handler threads": "KafkaRequestHandler.run",
    "raft / controller": "raft.",
    "group coordinator": "coordinator.group",
    "metrics": "metrics.",
}


def jfr_summary(jfr_file: Path, top: int = 15) -> dict[str, Any]:
    """Shares of JFR execution samples: by top frame (self time) and by `_MARKERS` (inclusive)."""
    text = subprocess.run(["jfr", "print", "--events", "jdk.ExecutionSample", "--stack-depth", "96", str(jfr_file)],
                          capture_output=True, text=True, check=True).stdout
    selfs: Counter[str] = Counter()
    marks: Counter[str] = Counter()
    samples = 0
    for event in text.split("jdk.ExecutionSample")[1:]:
        frames = [f.strip() for f in event.split("stackTrace = [", 1)[-1].split("\n") if "line:" in f]
        if not frames:
            continue
        samples += 1
        selfs[frames[0].split("(")[0]] += 1
        stack = "\n".join(frames)
        for name, marker in _MARKERS.items():
            if marker in stack:
                marks[name] += 1
    share = 100 / max(samples, 1)
    return {"samples": samples, "inclusive_pct": {k: round(v * share, 1) for k, v in marks.most_common()},
            "self_pct_top": {k: round(v * share, 1) for k, v in selfs.most_common(top)}}


# --- the run ------------------------------------------------------------------------------------------------------

def _component_pids(p: LocalPipeline) -> dict[str, int]:
    assert p.supervisor is not None
    return {n: c.process.pid for n, c in p.supervisor.components.items() if c.process is not None}


def _poll_scrape(p: LocalPipeline) -> dict[str, Any]:
    """The pollers' metrics ({} while the pollers are not up: they start with the first traffic)."""
    try:
        return scrape(p.ports["poll_metrics"])
    except httpx.HTTPError:
        return {}


def _delta(after: Counter[tuple[str, str]], before: Counter[tuple[str, str]], metric: str) -> dict[str, int]:
    return {tag: after[(m, tag)] - before.get((m, tag), 0) for (m, tag) in after if m == metric
            and after[(m, tag)] - before.get((m, tag), 0) > 0}


def _rates(counts: dict[str, int], seconds: float) -> dict[str, float]:
    return {k: round(v / seconds, 2) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = dict(kv.split("=", 1) for kv in args.env)
    options = PipelineOptions(workdir=workdir / "pipeline", seed=args.seed, poll_interval_s=args.poll_interval,
                              simulator_knobs={"delivery_concurrency": 16},
                              emulator_knobs={"latency_ms": args.sf_latency_ms,
                                              "latency_per_record_ms": args.sf_latency_per_record_ms},
                              extra_env=env)
    p = LocalPipeline(options)
    result: dict[str, Any] = {"label": args.label, "env": env, "events_asked": args.events, "rate": args.rate,
                              "load_start": os.getloadavg()}
    try:
        started = start_pipeline(p, args.warmup_events, args.rate, args.quiet, args.timeout, lambda s: say(f"  {s}"))
        assert p.stripe is not None and p.supervisor is not None and p.broker_cfg is not None
        broker_pid = started.broker_pid
        jmx = BrokerJmx(broker_pid, workdir)
        try:
            # idle window: the pipeline up, no traffic (with a warm-up, the pollers run: a pipeline's true idle)
            c0, cpu_b0, t0 = jmx.counts(), proc_cpu(broker_pid), time.monotonic()
            time.sleep(args.idle_seconds)
            c1, cpu_b1, t1 = jmx.counts(), proc_cpu(broker_pid), time.monotonic()
            idle_s = t1 - t0
            result["idle"] = {"seconds": round(idle_s, 1),
                              "broker_cpu_pct": round(100 * (cpu_b1 - cpu_b0) / idle_s, 2),
                              "requests_per_s": _rates(_delta(c1, c0, "RequestsPerSec"), idle_s)}
            say(f"  idle: broker {result['idle']['broker_cpu_pct']} % CPU, requests/s "
                f"{result['idle']['requests_per_s']}")
            counter = None
            if args.by_client:
                jmx.log_level("kafka.request.logger", "DEBUG")
            pids = {"broker": broker_pid, **_component_pids(p)}
            cpu0 = {n: proc_cpu(pid) for n, pid in pids.items()}
            seen: dict[int, tuple[str, float]] = {pid: (n, cpu0[n]) for n, pid in pids.items()}
            if args.jfr:
                subprocess.run(["jcmd", str(broker_pid), "JFR.start", "name=brq", "settings=profile"],
                               capture_output=True, check=True)
            names = java_thread_names(broker_pid)
            c2, t2, threads0 = jmx.counts(), time.monotonic(), thread_cpu(broker_pid, names)
            web0, sink0, poll0 = scrape(p.ports["webhook_metrics"]), scrape(p.ports["sink_metrics"]), _poll_scrape(p)
            drive(p, started, args.events, args.rate)
            if args.by_client:
                counter = RequestLogCounter(p.broker_cfg.log_file, {})
                counter.thread.start()
            end = _settle(p, args, seen, counter)  # None: timed out
            c3, t3, threads1 = jmx.counts(), time.monotonic(), thread_cpu(broker_pid, names)
            for pid, (name, _) in list(seen.items()):
                if (value := proc_cpu(pid)) > 0:
                    seen[pid] = (name, value)
            web1, sink1, poll1 = scrape(p.ports["webhook_metrics"]), scrape(p.ports["sink_metrics"]), _poll_scrape(p)
            if args.jfr:
                jfr_file = workdir / "broker.jfr"
                subprocess.run(["jcmd", str(broker_pid), "JFR.stop", "name=brq", f"filename={jfr_file}"],
                               capture_output=True, check=True)
                result["broker_profile"] = jfr_summary(jfr_file)
            if args.by_client:
                jmx.log_level("kafka.request.logger", "WARN")
        finally:
            jmx.close()
        if counter is not None:
            counter.stop.set()
            counter.thread.join(5)
        cpu0.setdefault("poll", 0.0)
        cpu = cpu_used(cpu0, seen)
        webhooks = metric_sum(web1, "paysync_webhook_accepted") - metric_sum(web0, "paysync_webhook_accepted")
        sink_m = scrape_delta(sink1, sink0)
        records = metric_sum(sink_m, "paysync_sink_records", result="upserted")
        q = histogram_quantiles(sink_m, "paysync_end_to_end_seconds")
        polls = scrape_delta(poll1, poll0)
        result["poller"] = {"copies_dropped": metric_sum(polls, "paysync_poller_copies_dropped"),
                            "published": metric_sum(polls, "paysync_poller_published")}
        secs = t3 - t2  # the same window as the counts and the CPU (to the end of the quiet spell)
        req = _delta(c3, c2, "RequestsPerSec")
        # FetchConsumer and FetchFollower are kinds of Fetch, counted again under their own names
        total_req = sum(v for k, v in req.items() if k not in ("FetchConsumer", "FetchFollower"))
        per_1k = 1000 / max(webhooks, 1)
        result.update({
            "finished": end is not None, "seconds": round(secs, 1), "webhooks": int(webhooks),
            "records": int(records), "p50_s": q["p50"], "p99_s": q["p99"],
            "broker_cpu_s_per_1k_events": round(cpu.get("broker", 0.0) * per_1k, 3),
            "cpu_s_per_1k_events": {k: round(v * per_1k, 3) for k, v in sorted(cpu.items())},
            "requests_per_1k_events": round(total_req * per_1k, 1),
            "requests_per_s": _rates(req, secs),
            "requests_per_1k_events_by_type": {k: round(v * per_1k, 1) for k, v in
                                                sorted(req.items(), key=lambda kv: -kv[1])},
            "produce_requests_per_1k_by_topic": {k.removeprefix(p.prefix): round(v * per_1k, 1) for k, v in sorted(
                _delta(c3, c2, "TotalProduceRequestsPerSec").items(), key=lambda kv: -kv[1])},
            "fetch_requests_per_1k_by_topic": {k.removeprefix(p.prefix): round(v * per_1k, 1) for k, v in sorted(
                _delta(c3, c2, "TotalFetchRequestsPerSec").items(), key=lambda kv: -kv[1])},
            "messages_in_per_1k_by_topic": {k.removeprefix(p.prefix): round(v * per_1k, 1) for k, v in sorted(
                _delta(c3, c2, "MessagesInPerSec").items(), key=lambda kv: -kv[1])},
            "broker_cpu_s_per_1k_events_without_jit": round(
                (cpu.get("broker", 0.0) - sum(threads1[k] - threads0.get(k, 0.0) for k in threads1
                                              if "CompilerThread" in k)) * per_1k, 3),
            "broker_thread_cpu_s_per_1k_events": {k: round(v * per_1k, 3) for k, v in sorted(
                ((k, threads1[k] - threads0.get(k, 0.0)) for k in threads1), key=lambda kv: -kv[1]) if v * per_1k >= 0.01},
            "cpu_comparable": not args.by_client,
        })
        if counter is not None:
            by_client: Counter[str] = Counter()
            for (owner, client, api), n in counter.counts.items():
                by_client[f"{owner}/{client}/{api}"] += n
            result["requests_per_1k_events_by_client"] = {k: round(v * per_1k, 1)
                                                          for k, v in by_client.most_common(40)}
    finally:
        p.stop()
        result["load_end"] = os.getloadavg()
    return result


def _settle(p: LocalPipeline, args: argparse.Namespace, seen: dict[int, tuple[str, float]],
            counter: RequestLogCounter | None) -> float | None:
    """Until the simulator is done and both stages have had zero lag for `--quiet` s; when (None: `--timeout`)."""
    assert p.stripe is not None and p.broker_cfg is not None
    lag = Lag(p.bootstrap)
    quiet = Quiet(args.quiet)
    deadline = time.monotonic() + args.timeout
    last_say = 0.0
    try:
        while time.monotonic() < deadline:
            pids = {"broker": int(json.loads(p.broker_cfg.pid_file.read_text())["pid"]), **_component_pids(p)}
            for name, pid in pids.items():
                value = proc_cpu(pid)
                if value > 0 or pid not in seen:
                    seen[pid] = (name, value)
            if counter is not None:
                counter.owner_of.update(client_ports({**_component_pids(p), "bench": os.getpid()}, p.broker_cfg.port))
            now = time.monotonic()
            done = bool(p.stripe.status().get("done"))
            # the lag probe (~4 broker requests: one ListOffsets, an OffsetFetch per group) is asked only once the
            # simulator is done, once a second, so the probe is not a sizeable part of what is measured
            lags: dict[str, int | None] = {"streams": None, "sink": None}
            if done:
                lags = stage_lags(p, lag)
                if None not in lags.values() and quiet.update(not any(lags.values()), now):
                    return quiet.since
            if now - last_say >= 10:
                say(f"  lag streams {lags['streams']} sink {lags['sink']} · simulator done {done}")
                last_say = now
            time.sleep(1.0 if done else 0.5)
    finally:
        lag.close()
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=6000)
    ap.add_argument("--rate", type=float, default=100.0, help="offered events/s")
    ap.add_argument("--idle-seconds", type=float, default=15.0)
    ap.add_argument("--warmup-events", type=int, default=3000, help="driven (at --rate) and settled before anything "
                    "is measured; 0 = measure a cold broker")
    ap.add_argument("--poll-interval", type=float, default=5.0)
    ap.add_argument("--sf-latency-ms", type=int, default=150)
    ap.add_argument("--sf-latency-per-record-ms", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quiet", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--jfr", action="store_true", help="profile the broker's Java threads with JFR over the workload")
    ap.add_argument("--by-client", action="store_true", help="request counts by component (request log: costs CPU)")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for every component (repeatable)")
    ap.add_argument("--label", default="")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="paysync-broker-req-"))
    say(f"broker requests benchmark · {args.events} events at {args.rate:g}/s · load {os.getloadavg()[0]:.2f} "
        f"· workdir {workdir}")
    result = run(args, workdir)
    text = json.dumps(result, indent=2)
    say(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    import shutil
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
