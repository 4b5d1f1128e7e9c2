"""The visibility horizon's floor (issue 15): at least 300 s against Stripe's own API, where entries appear in lists
minutes late; a simulator base, whose largest delay is a known knob, may use a horizon of seconds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paysync.settings import env_name, settings_env
from producers.pollers.settings import STRIPE_MIN_HORIZON_S, PollerSettings, is_stripe_base


def _settings(monkeypatch: pytest.MonkeyPatch, **values: object) -> PollerSettings:
    for name, value in settings_env(PollerSettings, **values).items():
        monkeypatch.setenv(name, value)
    return PollerSettings()


@pytest.mark.parametrize("base", ["https://api.stripe.com", "https://API.Stripe.com/", "https://files.stripe.com"])
def test_a_short_horizon_is_refused_against_stripe(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _settings(monkeypatch, stripe_api_base=base, poll_visibility_horizon_s=STRIPE_MIN_HORIZON_S - 1)
    message = str(caught.value)
    assert env_name(PollerSettings, "poll_visibility_horizon_s") in message and "tap-stripe#45" in message


def test_the_default_and_the_floor_itself_hold_against_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings(monkeypatch).poll_visibility_horizon_s == 600
    assert _settings(monkeypatch, poll_visibility_horizon_s=STRIPE_MIN_HORIZON_S).poll_visibility_horizon_s == 300


@pytest.mark.parametrize("base", ["http://127.0.0.1:12111", "http://localhost:8000/", "https://stripe.com.example"])
def test_a_simulator_base_may_use_a_horizon_of_seconds(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    settings = _settings(monkeypatch, stripe_api_base=base, poll_visibility_horizon_s=15, poll_sweep_every_s=5)
    assert (settings.poll_visibility_horizon_s, settings.poll_sweep_every_s) == (15, 5.0)
    assert not is_stripe_base(base)


def test_even_a_simulator_horizon_has_a_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        _settings(monkeypatch, stripe_api_base="http://127.0.0.1:12111", poll_visibility_horizon_s=4)
