"""Chaos scenarios at reduced size, grouped so that one pipeline run tests several faults, plus `all` once (with
a private broker, which broker-restart needs). Each run must end with Salesforce equal to Stripe and every poison
record dead-lettered with its origin; each test also checks that its faults really happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.chaos import RunConfig, plan, run
from ops.chaos.runner import RunResult

EVENTS = 400
RATE = 40.0


def _run(names: list[str], tmp_path: Path, bootstrap: str | None, seed: int = 11) -> RunResult:
    cfg = RunConfig(events=EVENTS, rate=RATE, seed=seed, workdir=tmp_path / "chaos", bootstrap=bootstrap,
                    settle_timeout_s=240, converge_s=60)
    result = run(plan(names, EVENTS, RATE, seed), cfg, print)
    print(result.line())
    assert result.passed, result.violations
    assert result.details["expected_records"] > 100
    assert result.details["salesforce_records"] == result.details["expected_records"]
    assert result.details["payouts"] == result.details["payouts_reconciled"] + result.details["payouts_manual"]
    assert result.details["payouts_reconciled"] > 0
    return result


@pytest.mark.slow
def test_components_killed_under_load_and_poison(tmp_path: Path, kafka_bootstrap: str) -> None:
    r = _run(["kill-receiver", "kill-stream", "kill-sink", "poison"], tmp_path, kafka_bootstrap)
    for component in ("webhook", "stream0", "sink"):
        assert r.faults[f"kill-{component}"] >= 2
        assert r.faults["restarts"][component] >= 2
    assert r.faults["poison"] == 7  # one of each kind at this size
    assert r.details["poison_in_dlq"] == 7 and r.details["dead_letter_origins"] == 7
    assert r.details["dead_letters"] >= 7  # the same poison may be dead-lettered again after a kill (at-least-once)


@pytest.mark.slow
def test_salesforce_errors_expiring_sessions_and_api_limit(tmp_path: Path, kafka_bootstrap: str) -> None:
    r = _run(["salesforce-faults", "session-expiry", "api-limit"], tmp_path, kafka_bootstrap)
    assert r.faults["sf-error-503-rate"] == 0.2 and r.faults["sf-lock-rate"] == 0.2
    assert r.faults["api-limit-outages"] == 1
    assert r.faults["sf-auth-calls"] >= 3  # sessions of 3 s had to be renewed


@pytest.mark.slow
def test_redelivered_dropped_webhooks_and_stripe_429s(tmp_path: Path, kafka_bootstrap: str) -> None:
    r = _run(["redelivery", "dropped-webhooks", "stripe-429"], tmp_path, kafka_bootstrap)
    copies = r.faults["webhook-copies"]
    assert set(copies) == {1, 2, 3}
    assert r.faults["webhook-extra-copies"] == copies[2] + 2 * copies[3]
    assert r.faults["webhook-dropped"] > 0
    assert r.faults["stripe-429s"] > 0


@pytest.mark.slow
def test_all_at_once_with_a_broker_restart(tmp_path: Path) -> None:
    r = _run(["all"], tmp_path, bootstrap=None, seed=5)
    assert r.faults["broker-outages"] == 1
    assert r.faults["poison"] == 7 and r.details["poison_in_dlq"] == 7
    assert r.faults["webhook-extra-copies"] > 0 and r.faults["stripe-429s"] > 0
