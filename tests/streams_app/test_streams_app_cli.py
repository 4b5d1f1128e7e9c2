"""`paysync stream` configuration and app wiring (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streams.app import TABLE_NAMES, build_app
from streams.cli import _parser, load_settings, main
from streams.metrics import StreamMetrics


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--metrics-port" in capsys.readouterr().out


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYSYNC_TOPIC_PREFIX", "acme.")
    monkeypatch.setenv("PAYSYNC_STREAM_APP_ID", "from-env")
    monkeypatch.setenv("PAYSYNC_STREAM_PAYOUT_RETENTION_HOURS", "40")
    settings = load_settings(_parser().parse_args(["--data-dir", str(tmp_path), "--partitions", "3"]))
    assert settings.app_id == "acme.from-env"
    assert settings.stream_data_dir == tmp_path and settings.topics.partitions == 3
    assert settings.stream_payout_retention_hours == 40
    settings = load_settings(_parser().parse_args(["--app-id", "flag"]))
    assert settings.app_id == "acme.flag"


def test_invalid_configuration_exits_with_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_STREAM_COMMIT_INTERVAL", "-1")
    assert main([]) == 2


def test_the_app_declares_prefixed_topics_and_its_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYSYNC_TOPIC_PREFIX", "acme.")
    settings = load_settings(_parser().parse_args(["--data-dir", str(tmp_path), "--store", "memory://"]))
    stream_app = build_app(settings, metrics=StreamMetrics(CollectorRegistry()))
    conf = stream_app.app.conf
    assert conf.processing_guarantee.value == "at_least_once"
    assert conf.consumer_auto_offset_reset == "earliest" and not conf.web_enabled
    assert set(stream_app.app.tables) == set(TABLE_NAMES) == {"versions", "bts", "payouts"}  # no event-id table
    assert settings.changelog_topics == [f"acme.paysync-streams-{t}-changelog" for t in ("versions", "bts", "payouts")]
    sources = {t for agent in stream_app.app.agents.values() for t in agent.channel.topics}
    assert {"acme.stripe.events", "acme.stripe.balance_transactions", "acme.paysync-streams-payout-join"} <= sources
    assert all(agent.concurrency == 1 for agent in stream_app.app.agents.values())
