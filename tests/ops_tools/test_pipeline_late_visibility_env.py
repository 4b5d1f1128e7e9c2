"""The local pipeline with late list visibility (issue 15): the pollers it starts get a horizon just above the
simulator's largest delay (valid for the simulator's base, refused for Stripe's), and `listed_by` is the moment the
first sweep past that horizon lists the newest entry."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from ops.pipeline import LATE_VISIBILITY_S, LocalPipeline, PipelineOptions
from paysync.settings import env_name
from producers.pollers.settings import PollerSettings


def _pipeline(tmp_path: Path, late_s: float) -> LocalPipeline:
    pipeline = LocalPipeline(PipelineOptions(workdir=tmp_path, bootstrap="broker-x:9092", poll_interval_s=2.0,
                                             visibility_max_delay_s=late_s))
    pipeline.ports = {"webhook": 18001, "webhook_metrics": 18002, "poll_metrics": 18003}
    stripe: Any = SimpleNamespace(api_key="sk_test_pipeline", base_url="http://127.0.0.1:18004")
    pipeline.stripe = stripe
    pipeline.sf = SimpleNamespace(base_url="https://127.0.0.1:18005", ca_cert_path=tmp_path / "ca.pem")
    pipeline.env = pipeline.component_env()
    return pipeline


def _poller(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> PollerSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return PollerSettings()


def test_late_lists_give_the_pollers_a_horizon_just_above_the_delay(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, LATE_VISIBILITY_S)
    poller = _poller(monkeypatch, pipeline.env)
    assert LATE_VISIBILITY_S < poller.poll_visibility_horizon_s <= LATE_VISIBILITY_S + 5
    assert poller.poll_sweep_every_s < poller.poll_visibility_horizon_s
    pipeline.generated_at = 1_000.0
    assert pipeline.listed_by() == 1_000.0 + poller.poll_visibility_horizon_s + poller.poll_sweep_every_s + 2 * 2.0
    with pytest.raises(ValidationError):  # the same horizon against Stripe itself is refused
        _poller(monkeypatch, {**pipeline.env, env_name(PollerSettings, "stripe_api_base"): "https://api.stripe.com"})


def test_without_late_lists_the_pollers_keep_their_production_horizon(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, 0.0)
    assert env_name(PollerSettings, "poll_visibility_horizon_s") not in pipeline.component_env()
    assert _poller(monkeypatch, pipeline.env).poll_visibility_horizon_s == 600
