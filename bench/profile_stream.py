"""Profile of the slowest stage, the stream worker: py-spy samples one `paysync stream` process while it drains a
fixed backlog (the tests' stream generator, as `streams_throughput.py` feeds it), then prints the top functions by
own and total time and the share of each layer (Faust/mode, aiokafka producer and consumer paths, RocksDB, Avro,
our processor/mapping, the asyncio loop, other; see `profile_layers.py`), with the worker's CPU per input record,
peak RSS and table size on disk over the same run.

Usage: .venv/bin/pip install -e '.[bench]'   # py-spy
       KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/profile_stream.py [--charges 3000]
           [--rate 100] [--max-seconds 300] [--raw-out profile.txt] [--markdown-out profile.md]
py-spy samples only threads that are running (not waiting in epoll), so the shares are shares of busy time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "streams_app"))

from bench_common import proc_cpu, proc_rss_mib  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from profile_layers import Summary, markdown, parse_raw, summarise  # noqa: E402
from paysync.settings import settings_env  # noqa: E402
from streams.settings import StreamSettings  # noqa: E402
from streams_app_gen import generate  # noqa: E402
from streams_app_harness import StreamWorker, produce, setup_topics, wait_for  # noqa: E402

PROCESSED = "paysync_stream_processed_total"


@dataclass
class Window:
    """What the worker did while py-spy sampled it."""

    seconds: float = 0.0
    records: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mib: float = 0.0
    rss_mib: list[float] = field(default_factory=list)


def py_spy() -> str:
    """The py-spy executable (next to this Python, else on PATH)."""
    exe = Path(sys.executable).with_name("py-spy")
    found = str(exe) if exe.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy not installed: .venv/bin/pip install -e '.[bench]'")
    return found


def _target(stream: list[Any]) -> int:
    """Input records the worker processes for `stream`: every record plus the payout-join messages it makes
    (one per payout header, one per balance transaction of a payout), as `streams_throughput.py` counts them."""
    headers = sum(1 for r in stream if r.kind == "events" and r.value["object_type"] == "payout")
    members = sum(1 for r in stream if r.kind == "bts" and r.value["payout_id"] and r.value["type"] != "payout")
    return len(stream) + headers + members


def sample_while_draining(worker: StreamWorker, target: int, args: argparse.Namespace, raw: Path) -> Window:
    """Start py-spy on the worker, wait until it has processed `target` records (or has been idle 10 s, or
    `--max-seconds`), stop py-spy (SIGINT: it writes its file) and return the window's figures."""
    pid = worker.proc.pid
    spy = subprocess.Popen([py_spy(), "record", "-p", str(pid), "-r", str(args.rate), "-f", "raw", "--nonblocking",
                            "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    w = Window()
    t0, count0, cpu0 = time.monotonic(), worker.metric(PROCESSED), proc_cpu(pid)
    last, last_change = count0, t0
    while time.monotonic() - t0 < args.max_seconds:
        time.sleep(1.0)
        if worker.proc.poll() is not None:
            spy.kill()
            raise SystemExit(f"the worker exited with {worker.proc.returncode}; see {worker.log_path}")
        # a scrape that timed out reads 0: keep the highest count seen
        count, now = max(worker.metric(PROCESSED), last), time.monotonic()
        rss = proc_rss_mib(pid)
        if rss is not None:
            w.rss_mib.append(rss)
            w.peak_rss_mib = max(w.peak_rss_mib, rss)
        if count != last:
            last, last_change = count, now
        if count >= target or now - last_change > 10:
            break
    w.seconds, w.records, w.cpu_s = last_change - t0, last - count0, proc_cpu(pid) - cpu0
    spy.send_signal(signal.SIGINT)
    _, err = spy.communicate(timeout=120)
    if not raw.exists():
        raise SystemExit(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")
    return w


def uptime() -> str:
    """`uptime`'s line (the load averages), or /proc/loadavg."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return Path("/proc/loadavg").read_text().strip()


def report(w: Window, summary: Summary, args: argparse.Namespace, sizes: tuple[int, int, int],
           load: tuple[str, str]) -> list[str]:
    """The markdown block: how it ran (`sizes`: events, expected input records, table bytes; `load`: `uptime` at
    start and end), the worker's figures, the layer and function tables."""
    n_events, target, state_bytes = sizes
    per_record = w.cpu_s / max(w.records, 1) * 1e6
    return [f"`bench/profile_stream.py --charges {args.charges} --rate {args.rate}`: one stream worker draining "
            f"{w.records:,.0f} input records while sampled ({target:,} in the backlog: {n_events:,} events, the rest "
            f"balance transactions and payout-join messages) in {w.seconds:.1f} s; py-spy at {args.rate} Hz, "
            f"{summary.samples:,} busy samples.", "",
            f"- `uptime` at start: `{load[0]}`", f"- `uptime` at end: `{load[1]}`",
            f"- worker CPU **{per_record:,.0f} µs per input record** ({w.cpu_s:.1f} CPU s; "
            f"{w.records / max(w.seconds, 1e-9):,.0f} records/s wall clock)",
            f"- peak RSS {w.peak_rss_mib:,.0f} MiB; RocksDB tables on disk {state_bytes / 2**20:,.1f} MiB "
            f"= {state_bytes / max(n_events, 1) * 1e6 / 2**30:,.2f} GiB per million events", "",
            *markdown(summary)]


def _default(name: str) -> float:
    """A `StreamSettings` field's default."""
    return float(StreamSettings.model_fields[name].default)


def _production_timeouts() -> dict[str, str]:
    """The worker's own session and stall timeouts instead of the test harness's short ones (6 s and 30 s, which
    a loaded machine trips: the stall watchdog exits while the first commit is still waiting)."""
    return settings_env(StreamSettings, stream_session_timeout_s=_default("stream_session_timeout_s"),
                        stream_stall_timeout_s=_default("stream_stall_timeout_s"))


def _delete_topics(bootstrap: str, prefix: str) -> None:
    """Remove this run's topics from the shared broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(mine, operation_timeout=30).values() if mine else ():
        future.result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=3000, help="size of the fixed input (as streams_throughput)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--raw-out", type=Path, help="keep py-spy's raw profile here")
    parser.add_argument("--markdown-out", type=Path, help="also write the markdown block here")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    stream = generate(seed=42, customers=max(10, args.charges // 5), charges=args.charges,
                      payouts=max(1, args.charges // 100))
    n_events = sum(1 for r in stream if r.kind == "events")
    load_start = uptime()
    prefix = f"prof{uuid.uuid4().hex[:8]}."
    setup_topics(bootstrap, prefix)
    produce(bootstrap, prefix, stream)
    tmp = Path(tempfile.mkdtemp(prefix="profile-stream-"))
    raw = args.raw_out or tmp / "profile.txt"
    worker = StreamWorker(bootstrap, prefix, "profile", tmp / "data", tmp / "worker.log",
                          commit_interval=_default("stream_commit_interval"), extra_env=_production_timeouts())
    try:
        if not wait_for(lambda: worker.metric(PROCESSED) > 0, timeout=120):
            raise SystemExit(f"worker did not start; see {tmp / 'worker.log'}")
        target = _target(stream)
        window = sample_while_draining(worker, target, args, raw)
    finally:
        worker.stop()
    state = sum(f.stat().st_size for f in (tmp / "data").rglob("*") if f.is_file())
    lines = report(window, summarise(parse_raw(raw.read_text(encoding="utf-8", errors="replace")), args.top),
                   args, (n_events, target, state), (load_start, uptime()))
    print("\n".join(lines))
    if args.markdown_out:
        args.markdown_out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.rmtree(tmp, ignore_errors=True)
    _delete_topics(bootstrap, prefix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
