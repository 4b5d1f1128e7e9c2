"""The end-to-end benchmark's parts that decide its figures: the histogram quantiles, the /proc CPU readings,
the latency model both paths get, the records-a-day figure, the naive figures and verdicts, and the naive baseline
receiver (signature check, mapping, one REST upsert per record) against the emulator, alone and under gunicorn."""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest
import stripe
from prometheus_client import generate_latest
from simple_salesforce import Salesforce

from emulators.salesforce_emulator import EmulatorHandle, client_session, start_emulator
from emulators.salesforce_emulator.faults import Knobs
from emulators.stripe_simulator import EventRecord, ScenarioParams, generate
from paysync.net import free_port
from paysync.settings import settings_env
from sinks.metrics import SinkMetrics

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_common import (  # noqa: E402
    compiler_cpu_since, compiler_threads_cpu, histogram_quantiles, parse_metrics, proc_cpu, records_per_day, sf_knobs,
    tree_cpu,
)
from bench_naive import naive_phase  # noqa: E402
from bench_paysync import cpu_used  # noqa: E402
from bench_report import verdicts  # noqa: E402
from naive_receiver import NaiveReceiver, NaiveSettings, merge_stats  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

SECRET = "whsec_naive_test"


def _hist(buckets: list[tuple[str, float]]) -> dict[str, Any]:
    return {"h": [({"le": le}, v, "h_bucket") for le, v in buckets]}


def test_quantiles_interpolate_inside_buckets_and_share_under_two_seconds_is_exact() -> None:
    m = _hist([("0.25", 10), ("0.5", 50), ("1.0", 90), ("2.0", 99), ("5.0", 100), ("+Inf", 100)])
    q = histogram_quantiles(m, "h")
    assert q["p50"] == pytest.approx(0.5)
    assert q["p99"] == pytest.approx(2.0)
    assert q["share_le_2s"] == pytest.approx(0.99)
    assert q["share_le_1s"] == pytest.approx(0.90)
    assert q["count"] == 100


@pytest.mark.parametrize("tail", [(2.0, 2.55), (0.8, 1.2)])
def test_the_sink_s_latency_histogram_resolves_p50_and_p99_near_the_targets(tail: tuple[float, float]) -> None:
    """The benchmark reads p50/p99 from the sink's `paysync_end_to_end_seconds` buckets, interpolating inside one:
    near the 1 s and 2 s targets they must come out within 0.25 s of the observations' own. On 08dcdcd the
    buckets ran 1, 2, 5: a tail of 13 % between 2.0 and 2.55 s (the sink's budget-paced batches at 100 events/s,
    2026-12-04) read as p99 4.8 s, its true p99 2.5."""
    rng = random.Random(7)
    seen = sorted([rng.uniform(0.1, tail[0]) for _ in range(8_700)] + [rng.uniform(*tail) for _ in range(1_300)])
    metrics = SinkMetrics()
    for value in seen:
        metrics.end_to_end.observe(value)
    q = histogram_quantiles(parse_metrics(generate_latest(metrics.registry).decode()), "paysync_end_to_end_seconds")
    assert q["count"] == len(seen)
    assert q["p50"] == pytest.approx(seen[len(seen) // 2 - 1], abs=0.25)
    assert q["p99"] == pytest.approx(seen[int(0.99 * len(seen)) - 1], abs=0.25)


def test_quantiles_of_an_empty_histogram_are_unknown() -> None:
    assert histogram_quantiles({}, "h")["p99"] is None


def test_a_slow_tail_lands_beyond_two_seconds() -> None:
    m = _hist([("0.25", 0), ("0.5", 0), ("1.0", 0), ("2.0", 50), ("5.0", 100), ("+Inf", 100)])
    q = histogram_quantiles(m, "h")
    assert 2.0 < q["p99"] <= 5.0
    assert q["share_le_2s"] == pytest.approx(0.5)


def test_proc_cpu_counts_this_process_and_is_zero_for_a_gone_one() -> None:
    before = proc_cpu(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert proc_cpu(os.getpid()) >= before + 0.2
    assert proc_cpu(2**22 + 12345) == 0.0


def test_tree_cpu_counts_a_busy_child_that_proc_cpu_of_the_parent_does_not_see_yet() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()+0.6\n"
                              "while time.process_time()<t: pass\ntime.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while proc_cpu(child.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc_cpu(child.pid) >= 0.5
        assert tree_cpu(os.getpid()) >= proc_cpu(os.getpid()) + 0.5
    finally:
        child.kill()
        child.wait()


_HOT_JAVA = """
public class Hot {
    public static void main(String[] a) throws Exception {
        long s = 0;
        for (int i = 0; i < 200_000_000; i++) { s += Long.rotateLeft(s ^ i, 7) * 31; }
        System.out.println(s);
        System.out.flush();
        Thread.sleep(30_000);
    }
}
"""


def test_the_jvm_s_compiler_threads_are_read_by_id_and_their_cpu_grows_with_hot_code(tmp_path: Path) -> None:
    source = tmp_path / "Hot.java"
    source.write_text(_HOT_JAVA)
    java = subprocess.Popen(["java", str(source)], stdout=subprocess.PIPE, text=True)
    try:
        assert java.stdout is not None and java.stdout.readline().strip()  # the hot loop has run
        threads = compiler_threads_cpu(java.pid)
        assert threads and all(tid.isdigit() for tid in threads)
        assert sum(threads.values()) > 0  # compiling the source and the hot loop took the compiler some time
        assert compiler_threads_cpu(os.getpid()) == {}  # CPython has no such threads
    finally:
        java.kill()
        java.wait()


def test_compiler_cpu_since_counts_growth_and_new_threads_never_a_retired_one() -> None:
    start = {"11": 2.0, "12": 5.0}  # 12 retired before the end reading
    end = {"11": 3.5, "13": 0.25}
    assert compiler_cpu_since(start, end) == pytest.approx(1.75)
    assert compiler_cpu_since({"11": 4.0}, {"11": 4.0}) == 0.0


def test_records_a_day_within_the_budget_follow_from_calls_per_record() -> None:
    assert records_per_day(1000.0) == pytest.approx(100_000)  # one call per record
    assert records_per_day(2.5) == pytest.approx(40_000_000)
    assert records_per_day(5.0, budget=1000) == pytest.approx(200_000)
    assert records_per_day(None) is None and records_per_day(0.0) is None


def test_the_latency_model_is_knobs_the_salesforce_emulator_accepts() -> None:
    args = argparse.Namespace(sf_latency_ms=150, sf_latency_per_record_ms=1, sf_bulk_queue_s=3.0,
                              sf_bulk_records_per_s=3000, sf_daily_limit=100_000)
    knobs = Knobs()
    knobs.update(sf_knobs(args))  # an unknown name would raise
    assert (knobs.latency_ms, knobs.latency_per_record_ms, knobs.daily_limit) == (150, 1, 100_000)


def _worker(requests: int, first: float, last: float, lat: list[float]) -> dict[str, Any]:
    return {"requests": requests, "events": requests, "records": 2 * requests, "failures": 1,
            "first_receive": first, "last_done": last, "latencies": lat}


def test_worker_stats_merge_into_one_window_and_all_latencies() -> None:
    merged = merge_stats([_worker(2, 100.0, 110.0, [0.2, 0.3]), _worker(1, 99.0, 105.0, [0.9]),
                          {**_worker(0, 0.0, 0.0, []), "first_receive": None, "last_done": None}])
    assert merged["requests"] == 3 and merged["records"] == 6 and merged["failures"] == 3
    assert (merged["first_receive"], merged["last_done"]) == (99.0, 110.0)
    assert sorted(merged["latencies"]) == [0.2, 0.3, 0.9] and merged["workers"] == 3


def test_naive_figures_count_the_whole_receiver_and_the_emulators_apart() -> None:
    stats = merge_stats([_worker(100, 10.0, 20.0, [0.1] * 99 + [2.0])])
    ph = naive_phase(stats, {"naive receiver": 0.3, "salesforce emulator": 0.1, "stripe simulator": 0.2},
                     {"auth": 5, "rest": 250}, 0, {"server": "gunicorn"})
    f = ph.figures
    assert f["events_per_s"] == pytest.approx(10.0)
    assert f["cpu_ms_per_event"] == pytest.approx(3.0)  # 0.3 CPU s / 100 events
    assert f["cpu_ms_per_event_with_emulators"] == pytest.approx(6.0)
    assert f["salesforce_calls_per_1k"] == pytest.approx(1250.0)  # auth excluded, 200 records
    assert f["records_per_day_at_100k_calls"] == pytest.approx(80_000)
    assert f["p50_latency_s"] == pytest.approx(0.1)


def test_verdicts_follow_issue_16_and_unknown_latency_stays_unknown() -> None:
    ps = {"cpu_ms_per_event": 0.9, "events_per_s": 1200.0, "salesforce_calls_per_1k": 2.5}
    nv = {"cpu_ms_per_event": 1.5}
    results = {"paysync": ps, "naive": nv, "replay_1m_s": 310.0, "latency": {"p99_s_at_100": 0.8}}
    rows = {name: ok for name, _, _, ok in verdicts(results)}
    assert rows["CPU ms per event, pipeline incl. its broker"] is True
    assert rows["… below the naive handler's (its CPU ms per event)"] is True
    assert rows["p99 webhook → Salesforce at 100 events/s (s)"] is True
    assert rows["p99 webhook → Salesforce at 300 events/s (s)"] is None
    assert rows["replay 1,000,000 events from offset 0 (s)"] is False
    nv["cpu_ms_per_event"] = 0.8
    rows = {name: ok for name, _, _, ok in verdicts({**results, "latency": {}})}
    assert rows["… below the naive handler's (its CPU ms per event)"] is False


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    handle = start_emulator(tmp_path_factory.mktemp("naive") / "org.sqlite3")
    yield handle
    handle.stop()


def _call(app: NaiveReceiver, body: str, signature: str) -> tuple[str, dict[str, Any]]:
    env: dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/stripe",
                           "CONTENT_LENGTH": str(len(body.encode())), "HTTP_STRIPE_SIGNATURE": signature,
                           "wsgi.input": io.BytesIO(body.encode())}
    setup_testing_defaults(env)
    seen: dict[str, str] = {}
    out = b"".join(app(env, lambda status, headers: seen.update(status=status)))
    return seen["status"], json.loads(out)


def _charge_event() -> str:
    for record in generate(ScenarioParams(seed=3, events=60, start_time=1_767_225_600)):
        if isinstance(record, EventRecord) and json.loads(record.json)["type"] == "charge.succeeded":
            return record.json
    raise AssertionError("the generator made no charge.succeeded")


def test_naive_receiver_upserts_a_verified_event_and_refuses_a_forged_one(emulator: EmulatorHandle) -> None:
    c = emulator.credentials
    app = NaiveReceiver(NaiveSettings(
        webhook_secrets=["whsec_other", SECRET], salesforce_login_url=emulator.base_url,
        salesforce_client_id=c["client_id"], salesforce_client_secret=c["client_secret"],
        salesforce_ca_bundle=str(emulator.ca_cert_path)))
    body = _charge_event()
    charge_id = json.loads(body)["data"]["object"]["id"]

    status, _ = _call(app, body, stripe.WebhookSignature.generate_signature_header(body, "whsec_forged"))
    assert status.startswith("400")
    status, _ = _call(app, body, stripe.WebhookSignature.generate_signature_header(body, SECRET))
    assert status.startswith("200")

    stats = app.stats()
    assert stats["requests"] == 1 and stats["records"] >= 1 and stats["failures"] == 0
    assert len(stats["latencies"]) == 1 and 0 < stats["latencies"][0] < 30
    sf = Salesforce(username=c["username"], password=c["password"], security_token=c["security_token"],
                    session=client_session(emulator))
    rows = sf.query(f"SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = '{charge_id}'")["records"]
    assert len(rows) == 1
    calls = emulator.stats()["calls"]
    assert calls["rest"] >= stats["records"]  # one REST call per record (plus parent stubs), no batching


def test_naive_receiver_under_gunicorn_serves_with_every_worker_and_reports_on_graceful_stop(
        emulator: EmulatorHandle, tmp_path: Path) -> None:
    c = emulator.credentials
    port = free_port()
    env = {**os.environ, **settings_env(
        NaiveSettings, naive_port=port, naive_workers=2, naive_threads=2, naive_stats_dir=str(tmp_path),
        webhook_secrets=SECRET, salesforce_login_url=emulator.base_url, salesforce_client_id=c["client_id"],
        salesforce_client_secret=c["client_secret"], salesforce_ca_bundle=str(emulator.ca_cert_path)),
        "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "naive_receiver.py")], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "log", "ab"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("*.ready"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "log").read_text()
            time.sleep(0.1)
        body = _charge_event()
        resp = httpx.post(f"http://127.0.0.1:{port}/webhooks/stripe", content=body, timeout=30, headers={
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET)})
        assert resp.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(45)
    merged = merge_stats([json.loads(p.read_text()) for p in tmp_path.glob("*.json")])
    assert merged["workers"] == 2  # both workers wrote their counters on the graceful stop
    assert merged["requests"] == 1 and merged["records"] >= 1 and merged["failures"] == 0


def _results() -> dict[str, Any]:
    side = {"events_per_s": 500.0, "p50_latency_s": 0.4, "p99_latency_s": 1.5, "salesforce_calls_per_1k": 2.5,
            "stripe_calls_per_1k": 40.0, "cpu_ms_per_event": 0.9, "cpu_ms_per_event_with_emulators": 1.4,
            "records_per_day_at_100k_calls": 40_000_000.0}
    detail = {"events": 1000, "records": 800, "seconds": 2.0, "finished": True, "offered_events_per_s": 600.0,
              "restarts": {}, "latency_observations": 800, "latency_share_le_2s": 0.99, "cpu_s": {"sink": 0.1},
              "max_lag": {"streams": 5}, "slowest_stage": "streams", "salesforce_calls": {"composite": 2},
              "stripe_calls": 40, "failures": 0, "server": "gunicorn gthread, 2 workers × 16 threads",
              "delivery_concurrency": 32}
    replay = {"events": 0, "seconds": None, "streams_seconds": None, "events_per_s": None, "finished": False,
              "replay_1m_s": None, "replay_1m_extrapolated": True}
    return {"machine": {"cpu": "x", "cores": 2, "memory_gib": 1.0, "kernel": "k", "python": "3.11"},
            "date": "2026-12-02T00:00:00+00:00", "paysync": side, "naive": dict(side), "speedup_vs_naive": 1.0,
            "latency": {"seconds_each": 30.0, "runs": {"100": {"rate": 100.0, "events": 3000, "records": 2400,
                                                                "offered_events_per_s": 99.0, "p50_s": 0.3,
                                                                "p99_s": 0.9, "share_le_1s": 0.99,
                                                                "share_le_2s": 1.0, "salesforce_calls_per_1k": 9.0}},
                        "p99_s_at_100": 0.9}, "replay_1m_s": None,
            "sf_latency_model": {"ms_per_call": 150, "ms_per_record_saved": 1, "bulk_queue_s": 3.0,
                                 "bulk_records_per_s": 3000, "daily_api_limit": 100_000},
            "load": {"start": 1.0, "end": 2.0, "loadavg_start": "up 1", "loadavg_end": "up 2"},
            "detail": {"paysync": detail, "naive": detail, "replay": replay}}


def test_the_report_rewrites_its_part_and_keeps_every_section_below_the_notes_marker(tmp_path: Path) -> None:
    from bench_report import NOTES_MARKER, write_markdown

    path = tmp_path / "BENCHMARKS.md"
    notes = "### What an older run says\n\nby hand\n\n## Soak\n\nan hour at 20 events/s"
    path.write_text(f"# Benchmarks\n\nold figures 477\n\n## Notes\n\n{NOTES_MARKER}\n{notes}\n", encoding="utf-8")
    args = argparse.Namespace(argv=["--events", "1000"], delivery_concurrency=16, rate=0.0, stream_workers=1,
                              profile_seconds=20.0)
    write_markdown(path, _results(), args)
    text = path.read_text(encoding="utf-8")
    assert "old figures 477" not in text
    assert text.split(NOTES_MARKER, 1)[1].strip() == notes
    assert "150 ms + 1 ms per record saved" in text and "100,000" in text and "2 workers × 16 threads" in text
    assert "| 100 (measured 99) | 3000 / 2400 | 0.300 | 0.900 |" in text


def test_a_restarted_component_counts_the_cpu_of_its_dead_process_and_of_the_new_one() -> None:
    # stream0 started at 10 s CPU, its first process was last read at 14 s before it crashed, the new one used 3 s
    seen = {101: ("stream0", 14.0), 202: ("stream0", 3.0), 303: ("sink", 2.5)}
    assert cpu_used({"stream0": 10.0, "sink": 2.0}, seen) == pytest.approx({"stream0": 7.0, "sink": 0.5})
