"""The soak's report (`bench/soak.py`): the RSS slope of each component, the per-interval table, the plot
(`bench/soak.png`), the raw summary (`bench/soak.json`) and the "Soak" section of `BENCHMARKS.md`.

The section goes at the end of `BENCHMARKS.md`, below `bench_report.NOTES_MARKER`, so that `pipeline_bench.py`
(which rewrites everything above the marker) keeps it; a soak run replaces only its own section.

Flat memory: the least-squares slope of a process's RSS over the second half of the traffic (only the samples of
the process alive at the end of that half, so a node restarted in it is measured from its restart on) is at most
`--flat-mib-per-h` (default 10 MiB/hour; a leak of 1 KiB per event at 20 events/s would be 70 MiB/hour). Judged
for the paysync components. A Kafka node is a JVM with a fixed heap (`-Xms`=`-Xmx`, `ClusterConfig.heap`): its RSS
climbs for many minutes after each (re)start while G1 first touches its heap regions, and every node restarts in
the second half of a soak with a restart every ten minutes, so a slope would measure that warm-up, not a leak; a
node is judged bounded instead: its largest RSS stays under the heap plus `JVM_OVERHEAD_MIB` of non-heap memory
(metaspace, thread stacks, code cache, direct buffers). The emulators stand in for Stripe and Salesforce and keep
their whole state by design: reported, not judged.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_common import histogram_quantiles
from bench_report import NOTES_MARKER

if TYPE_CHECKING:
    import argparse

    from ops.chaos.runner import RunResult
    from soak import Restart, Sample

SECTION = "## Soak"
LATENCY = "paysync_end_to_end_seconds"
Buckets = dict[float, float]
JUDGED = ("receiver", "pollers", "stream worker", "sink")
JVM_PREFIX = "kafka node"
JVM_OVERHEAD_MIB = 320.0


def bucket_diff(prev: Buckets | None, cur: Buckets) -> Buckets:
    """Observations between two cumulative scrapes; the whole of `cur` when the sink restarted (counts fell)."""
    if prev is None or any(cur.get(le, 0.0) < n for le, n in prev.items()):
        return dict(cur)
    return {le: n - prev.get(le, 0.0) for le, n in cur.items()}


def quantiles(buckets: Buckets) -> dict[str, float | None]:
    """p50/p99 (and the count) of a set of Prometheus buckets, interpolated as `bench_common` does."""
    family = [({"le": str(le)}, n, f"{LATENCY}_bucket") for le, n in buckets.items()]
    return histogram_quantiles({LATENCY: family}, LATENCY)


def require_matplotlib() -> None:
    """Fail before an hour of soak, not after it, when the plot cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("matplotlib is missing: .venv/bin/pip install -e '.[bench]'") from None


def slope(samples: list[Sample], name: str, start: float, end: float) -> dict[str, Any]:
    """RSS slope (MiB/hour) of component `name` in [start, end], from the samples of the process alive last."""
    window = [s for s in samples if start <= s.t <= end and s.rss.get(name) is not None]
    if not window:
        return {"slope_mib_per_h": None, "span_s": 0.0, "points": 0}
    pid = window[-1].pids.get(name)
    run: list[Sample] = []
    for s in reversed(window):
        if s.pids.get(name) != pid:
            break
        run.append(s)
    run.reverse()
    ts = [s.t for s in run]
    ys = [float(s.rss[name] or 0.0) for s in run]
    if len(run) < 5:
        return {"slope_mib_per_h": None, "span_s": ts[-1] - ts[0], "points": len(run)}
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    k = sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / var if var else 0.0
    return {"slope_mib_per_h": round(k * 3600, 1), "span_s": round(ts[-1] - ts[0], 1), "points": len(run),
            "first_mib": ys[0], "last_mib": ys[-1]}


def _last_with_buckets(samples: list[Sample]) -> Sample | None:
    return next((s for s in reversed(samples) if s.buckets is not None), None)


def intervals(samples: list[Sample], every: float, traffic_end: float) -> list[dict[str, Any]]:
    """Per `every` s of the run: RSS first/last per component, max lags, p50/p99, webhooks acknowledged, non-2xx."""
    out: list[dict[str, Any]] = []
    before: list[Sample] = []
    k = 0
    while True:
        chunk = [s for s in samples if k * every <= s.t < (k + 1) * every]
        if not chunk:
            break
        rss: dict[str, tuple[float | None, float | None]] = {}
        for name in chunk[0].rss:
            values = [s.rss[name] for s in chunk if s.rss.get(name) is not None]
            rss[name] = (values[0], values[-1]) if values else (None, None)
        prev, last = _last_with_buckets(before), _last_with_buckets(chunk)
        q: dict[str, Any] = {"p50": None, "p99": None, "count": 0}
        if last is not None and last.buckets is not None:
            q = quantiles(bucket_diff(prev.buckets if prev else None, last.buckets))
        lags = {g: [v for s in chunk if (v := s.lag.get(g)) is not None] for g in ("streams", "sink")}
        base_acked, base_bad = (before[-1].acked, before[-1].non2xx) if before else (0, 0)
        out.append({"from_s": k * every, "to_s": min((k + 1) * every, chunk[-1].t), "rss": rss,
                    "after_traffic": k * every >= traffic_end,
                    "max_lag": {g: max(v) if v else None for g, v in lags.items()},
                    "p50": q["p50"], "p99": q["p99"], "landed": q["count"],
                    "acked": chunk[-1].acked - base_acked, "non2xx": chunk[-1].non2xx - base_bad})
        before += chunk
        k += 1
    return out


def trimmed(samples: list[Sample]) -> list[Sample]:
    """The samples up to the last one where a paysync component was alive (not those taken during the shutdown)."""
    alive = [i for i, s in enumerate(samples) if any(s.rss.get(n) is not None for n in ("receiver", "sink"))]
    return samples[: alive[-1] + 1] if alive else []


def plot(samples: list[Sample], restarts: list[Restart], traffic_end: float, path: Path) -> None:
    """Three panels over time (minutes): RSS per component, lag of both groups, p50/p99 per sample interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    minutes = [s.t / 60 for s in samples]
    fig, (mem, lag, lat) = plt.subplots(3, 1, figsize=(13, 11), sharex=True, constrained_layout=True)
    nan = float("nan")
    for name in samples[0].rss if samples else []:
        style = "--" if "emulator" in name or "simulator" in name else "-"
        mem.plot(minutes, [s.rss.get(name) or nan for s in samples], style, label=name, linewidth=1.3)
    mem.set_yscale("log")
    mem.yaxis.set_major_formatter(ScalarFormatter())
    mem.yaxis.set_minor_formatter(ScalarFormatter())
    mem.tick_params(axis="y", which="minor", labelsize=7)
    mem.set_ylabel("RSS (MiB, log scale)")
    mem.set_title("Memory per component")
    mem.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for group in ("streams", "sink"):
        lag.plot(minutes, [s.lag.get(group) if s.lag.get(group) is not None else nan for s in samples],
                 label=f"{group} group", linewidth=1.2)
    lag.set_ylabel("consumer lag (records)")
    lag.set_title("Committed-offset lag")
    lag.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for key, label in (("p50", "p50"), ("p99", "p99")):
        lat.plot(minutes, [getattr(s, key) if getattr(s, key) is not None else nan for s in samples], ".-",
                 label=f"{label} end to end", linewidth=0.8, markersize=2)
    lat.set_yscale("log")
    lat.set_ylabel("latency (s, log scale)")
    lat.set_title("End-to-end latency (sink histogram, per sample interval)")
    lat.set_xlabel("minutes since traffic start")
    lat.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    for r in restarts:
        color = "black" if r.how == "SIGKILL" else "goldenrod"
        for ax in (mem, lag, lat):
            ax.axvspan(r.at / 60, (r.started_at or r.at) / 60, color=color, alpha=0.15)
            ax.axvline(r.at / 60, color=color, linestyle=":", linewidth=1)
        mem.annotate(f"node {r.node} {r.how}", (r.at / 60, 1.0), xycoords=("data", "axes fraction"),
                     fontsize=7, color=color, rotation=90, va="top", ha="right")
    for ax in (mem, lag, lat):
        ax.axvline(traffic_end / 60, color="grey", linestyle="--", linewidth=1)
        ax.grid(True, alpha=0.3)
    fig.suptitle("paysync soak: steady traffic, one Kafka node restarted per period (shaded: node down; "
                 "grey: traffic ends)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(v: float | int | None, nd: int = 0) -> str:
    return "–" if v is None else f"{v:,.{nd}f}"


def judge(name: str, sl: dict[str, Any], threshold: float) -> bool | None:
    """Whether component `name` kept its memory flat (a JVM: bounded); None when not judged or not measurable."""
    if name.startswith(JVM_PREFIX):
        return None if sl.get("max_mib") is None else bool(sl["max_mib"] <= sl["ceiling_mib"])
    if name not in JUDGED or sl["slope_mib_per_h"] is None:
        return None
    return bool(sl["slope_mib_per_h"] <= threshold)


def _verdict_text(name: str, sl: dict[str, Any], threshold: float) -> str:
    ok = judge(name, sl, threshold)
    if name.startswith(JVM_PREFIX):
        bound = f"max {_f(sl.get('max_mib'))} MiB vs {_f(sl.get('ceiling_mib'))}"
        return f"bounded ({bound})" if ok else f"**over its bound** ({bound})"
    if name not in JUDGED:
        return "not judged (emulator)"
    return "n/a (too few samples)" if ok is None else "flat" if ok else "**growing**"


def _tables(restarts: list[Restart], slopes: dict[str, dict[str, Any]], rows: list[dict[str, Any]],
            threshold: float) -> list[str]:
    lines = ["| # | at (s) | node | signal | started again (s) | every ISR full (s) |", "|---|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {r.at:.0f} | {r.node} | {r.how} | {_f(r.started_at)} | {_f(r.in_sync_at)}"
              f"{' ' + r.error if r.error else ''} |" for i, r in enumerate(restarts)]
    lines += ["", "Second half of the traffic (from a restarted process's restart on):", "",
              "| component | RSS first → last (MiB) | slope (MiB/hour) | samples (span) | verdict |",
              "|---|---|---|---|---|"]
    for name, sl in slopes.items():
        k = sl["slope_mib_per_h"]
        verdict = _verdict_text(name, sl, threshold)
        lines.append(f"| {name} | {_f(sl.get('first_mib'))} → {_f(sl.get('last_mib'))} | {_f(k, 1)} | "
                     f"{sl['points']} ({sl['span_s'] / 60:.0f} min) | {verdict} |")
    names = list(rows[0]["rss"]) if rows else []
    lines += ["", "Per interval: RSS at its first → last sample (MiB); max committed-offset lag (records); latency "
              "of the records landed in it (s); 2xx and non-2xx answers to webhook deliveries.", "",
              "| minutes | " + " | ".join(names) + " | max lag streams / sink | p50 | p99 | 2xx | non-2xx |",
              "|---" * (len(names) + 6) + "|"]
    for row in rows:
        mems = " | ".join(f"{_f(a)}→{_f(b)}" for a, b in row["rss"].values())
        lag = f"{_f(row['max_lag']['streams'])} / {_f(row['max_lag']['sink'])}"
        span = "after the traffic" if row["after_traffic"] else f"{row['from_s'] / 60:.0f}–{row['to_s'] / 60:.0f}"
        lines.append(f"| {span} | {mems} | {lag} | {_f(row['p50'], 2)} | "
                     f"{_f(row['p99'], 2)} | "
                     f"{row['acked']:,} | {row['non2xx']:,} |")
    return lines


def _memory_line(summary: dict[str, Any], slopes: dict[str, dict[str, Any]]) -> str:
    a = summary["args"]
    rule = (f"every paysync component's RSS grows at most {a['flat_mib_per_h']:g} MiB/hour over the second half "
            f"(least-squares slope), every Kafka node's RSS stays under its {a['kafka_heap_mib']:g} MiB heap + "
            f"{JVM_OVERHEAD_MIB:g} MiB (why: `bench/soak_report.py`)")
    if summary["flat"]:
        return f"- **Memory**: flat: {rule}."
    bad = ", ".join(f"{n} ({_verdict_text(n, slopes[n], a['flat_mib_per_h'])}, {_f(slopes[n]['slope_mib_per_h'], 1)} "
                    "MiB/hour)" for n in summary["growing"])
    return f"- **Memory**: **not flat** — rule: {rule}; failing: {bad}."


def section(summary: dict[str, Any], restarts: list[Restart], slopes: dict[str, dict[str, Any]],
            rows: list[dict[str, Any]]) -> str:
    """The markdown of the Soak section."""
    a, res = summary["args"], summary["result"]
    verdict = "CLEAN, every payout Reconciled" if res["passed"] else "FAILED: " + " | ".join(res["violations"])
    lines = [SECTION, "",
             f"`bench/soak.py` (a script, not a test), run of {summary['started']} UTC on this machine "
             f"({os.cpu_count()} cores, shared; load {summary['load_end']:.2f} at the end): **{a['duration']:g} s** of "
             f"traffic at **{a['rate']:g} events/s** ({summary['events']:,} events; {summary['acked']:,} webhooks "
             f"acknowledged) on a private 3-node KRaft cluster; one node restarted every {a['restart_every']:g} s "
             f"(SIGTERM and SIGKILL alternately, {a['down_s']:g} s down); a sample every {a['sample_s']:g} s. "
             f"{summary['total_s']:.0f} s in all with start-up, settle and reconcile.", "",
             f"- **Reconcile**: {verdict} (settled {res['settle_s']:.0f} s after the last node was back in sync).",
             _memory_line(summary, slopes),
             f"- **Longest non-2xx window** at the receiver: {summary['longest_non2xx_s']} s "
             f"({summary['non2xx']} non-2xx answers in all, each retried by the simulator; no acknowledged "
             "webhook lost).",
             f"- **Max lag**: streams {_f(summary['max_lag']['streams'])}, sink {_f(summary['max_lag']['sink'])} "
             f"records; **p99 end to end** over the run {_f(summary['p99'], 2)} s (p50 {_f(summary['p50'], 2)} s), "
             f"worst 10-minute p99 during the traffic {_f(summary['worst_interval_p99'], 2)} s.", "",
             "![soak: memory, lag and latency over the hour](bench/soak.png)", ""]
    lines += _tables(restarts, slopes, rows, float(a["flat_mib_per_h"]))
    return "\n".join(lines) + "\n"


def replace_section(path: Path, text: str) -> None:
    """Put `text` in place of the Soak section of `path` (or at its end), below the notes marker."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if NOTES_MARKER not in old:
        old = old.rstrip() + f"\n\n## Notes\n\n{NOTES_MARKER}\n"
    start = old.find(f"\n{SECTION}\n", old.index(NOTES_MARKER))
    if start < 0:
        new = old.rstrip() + "\n\n" + text
    else:
        end = old.find("\n## ", start + 1)
        new = old[: start + 1] + text + (old[end:] if end >= 0 else "")
    path.write_text(new, encoding="utf-8")


def write_outputs(args: argparse.Namespace, started: str, total_s: float, samples: list[Sample],
                  restarts: list[Restart], result: RunResult, load_end: float | None = None) -> bool:
    """Write the PNG, the JSON and the Markdown section; True when memory is flat. `load_end`: the 1-minute load
    when the run ended (default: now)."""
    samples = trimmed(samples)
    half = args.duration / 2
    names = list(samples[0].rss) if samples else []
    slopes = {n: slope(samples, n, half, args.duration) for n in names}
    for n in names:
        if n.startswith(JVM_PREFIX):
            seen = [v for s in samples if (v := s.rss.get(n)) is not None]
            slopes[n].update(max_mib=max(seen) if seen else None, ceiling_mib=args.kafka_heap_mib + JVM_OVERHEAD_MIB)
    growing = [n for n, s in slopes.items() if judge(n, s, args.flat_mib_per_h) is False]
    rows = intervals(samples, 600.0, args.duration)
    last = _last_with_buckets(samples)
    overall = quantiles(last.buckets) if last and last.buckets else {"p50": None, "p99": None}
    lags = {g: [v for s in samples if (v := s.lag.get(g)) is not None] for g in ("streams", "sink")}
    interval_p99 = [r["p99"] for r in rows if r["p99"] is not None and not r["after_traffic"]]
    summary: dict[str, Any] = {
        "started": started, "total_s": round(total_s, 1), "load_end": os.getloadavg()[0] if load_end is None else load_end,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "events": int(args.rate * args.duration), "acked": result.faults.get("webhooks-acknowledged", 0),
        "non2xx": samples[-1].non2xx if samples else 0,
        "longest_non2xx_s": result.faults.get("longest-non-2xx-window-s"),
        "flat": not growing, "growing": growing, "p50": overall["p50"], "p99": overall["p99"],
        "max_lag": {g: max(v) if v else None for g, v in lags.items()},
        "worst_interval_p99": max(interval_p99) if interval_p99 else None,
        "result": {"passed": result.passed, "violations": result.violations, "line": result.line(),
                   "settle_s": round(result.settle_s, 1), "faults": result.faults, "details": result.details},
    }
    if samples:
        plot(samples, restarts, args.duration, args.png)
    raw = [{k: v for k, v in asdict(s).items() if k != "buckets"} for s in samples]
    args.json.write_text(json.dumps({**summary, "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                     "restarts": [asdict(r) for r in restarts], "rss_slopes": slopes,
                                     "intervals": rows, "samples": raw}, indent=1, default=str) + "\n",
                         encoding="utf-8")
    replace_section(args.markdown, section(summary, restarts, slopes, rows))
    return bool(summary["flat"])
