"""The replay phase's stream-worker figures (bench/bench_replay.py): CPU per input event while the workers worked,
peak RSS, state size per million events, the workers-alone 1M estimate, their `results.json` summary, the verdict
and the report lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_replay import StreamProbe, _with_estimates, stream_figures, stream_summary  # noqa: E402
from bench_report import _stream_lines, verdicts  # noqa: E402


def _probe() -> StreamProbe:
    # two processes of stream0 (the first crashed at 3 CPU s), 2 CPU s of start-up before the first record,
    # caught up at 9 CPU s; RSS sampled from the start
    return StreamProbe(cpu_seen={101: 3.0, 202: 7.5}, peak_rss_mib={"stream0": 130.0},
                       rss_samples=[(0.0, 0.0), (5.0, 60.0), (10.0, 120.0), (15.0, 126.0)],
                       marks={"working": 2.0, "caught_up": 9.0}, marked_at={"working": 8.0, "caught_up": 15.0})


def test_stream_cpu_counts_every_process_from_the_first_record_until_caught_up() -> None:
    f = stream_figures(_probe(), processed=10_000, state_bytes=50 * 2**20)
    assert f["stream_cpu_s"] == pytest.approx(10.5)
    assert f["stream_cpu_s_working"] == pytest.approx(7.0)
    assert f["stream_cpu_us_per_record"] == pytest.approx(700.0)
    assert f["stream_peak_rss_mib"] == 130.0
    assert f["stream_rss_mib_first_last"] == [120.0, 126.0]  # samples before the first record are start-up
    assert f["stream_state_mib_per_1m_events"] == pytest.approx(5000.0)


def test_a_replay_that_processed_nothing_has_no_per_record_figures() -> None:
    f = stream_figures(StreamProbe(), processed=0, state_bytes=0)
    assert f["stream_cpu_us_per_record"] is None and f["stream_state_mib_per_1m_events"] is None
    assert f["stream_peak_rss_mib"] is None and f["stream_rss_mib_first_last"] is None


def test_the_workers_alone_estimate_scales_their_time_until_caught_up() -> None:
    result = {"salesforce_calls": {"auth": 1, "composite": 10}, "records": 1000, "seconds": 60.0,
              "startup_seconds": 10.0, "streams_seconds": 30.0, "processed": 100_000, "finished": True}
    r = _with_estimates(result, 100_000)
    assert r["replay_streams_1m_s"] == pytest.approx(10.0 + 20.0 * 10)
    assert r["replay_1m_s"] == pytest.approx(10.0 + 50.0 * 10)
    assert _with_estimates({**result, "streams_seconds": None}, 100_000)["replay_streams_1m_s"] is None


def test_the_summary_verdict_and_report_carry_the_stream_figures() -> None:
    replay = {"sf_latency_model": {"ms_per_call": 150, "ms_per_record_saved": 1, "bulk_queue_s": 3.0,
                                   "bulk_records_per_s": 3000}, "replay_streams_1m_s": 210.0,
              **stream_figures(_probe(), processed=10_000, state_bytes=50 * 2**20)}
    summary = stream_summary(replay)
    assert summary["cpu_us_per_record"] == pytest.approx(700.0) and summary["peak_rss_mib"] == 130.0
    results = {"paysync": {"cpu_ms_per_event": 0.9, "events_per_s": 1200.0, "salesforce_calls_per_1k": 2.5},
               "naive": {"cpu_ms_per_event": 1.5}, "replay_1m_s": 250.0, "stream": summary}
    rows = {name: ok for name, _, _, ok in verdicts(results)}
    assert rows["stream worker CPU per input record in the replay (µs)"] is False
    assert rows["replay 1,000,000 events from offset 0 (s)"] is True
    assert verdicts({**results, "stream": {}})[-1][3] is None
    text = "\n".join(_stream_lines(replay))
    assert "150 ms + 1 ms per record saved" in text and "**700 µs CPU per input record**" in text
    assert "peak RSS 130 MiB" in text and "5,000 MiB per 1,000,000 events" in text
    assert _stream_lines({}) == []
