"""The sink consumer's fetch settings (issue 16): `PAYSYNC_SINK_FETCH_WAIT_MS` / `PAYSYNC_SINK_FETCH_MIN_BYTES` become
librdkafka's `fetch.wait.max.ms` / `fetch.min.bytes`, so at moderate load the broker answers a few larger fetches
instead of one per stream produce request. Settings and the consumer's config only; no broker."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from paysync.settings import env_name, settings_env
from sinks import sink as sink_module
from sinks.settings import SinkSettings
from sinks.sink import Sink

DEFAULT_WAIT, DEFAULT_MIN = 500, 1


def _settings(monkeypatch: pytest.MonkeyPatch, **values: object) -> SinkSettings:
    for name, value in settings_env(SinkSettings, **values).items():
        monkeypatch.setenv(name, value)
    return SinkSettings()


class _Recording:
    """Stands in for confluent_kafka's Consumer and Producer: keeps the config it was given."""

    configs: list[dict[str, Any]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        _Recording.configs.append(config)

    def subscribe(self, *_args: Any, **_kwargs: Any) -> None:
        pass


def test_the_fetch_defaults_and_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    assert (settings.sink_fetch_wait_ms, settings.sink_fetch_min_bytes) == (DEFAULT_WAIT, DEFAULT_MIN)
    assert env_name(SinkSettings, "sink_fetch_wait_ms") == "PAYSYNC_SINK_FETCH_WAIT_MS"
    assert env_name(SinkSettings, "sink_fetch_min_bytes") == "PAYSYNC_SINK_FETCH_MIN_BYTES"
    with pytest.raises(ValidationError):
        _settings(monkeypatch, sink_fetch_min_bytes=0)
    with pytest.raises(ValidationError):
        _settings(monkeypatch, sink_fetch_wait_ms=10_001)


@pytest.mark.parametrize(("wait_ms", "min_bytes"), [(None, None), (500, 1), (50, 1_048_576)])
def test_the_settings_reach_the_consumer(monkeypatch: pytest.MonkeyPatch, wait_ms: int | None,
                                         min_bytes: int | None) -> None:
    monkeypatch.setattr(sink_module, "Consumer", _Recording)
    monkeypatch.setattr(sink_module, "Producer", _Recording)
    values = {} if wait_ms is None else {"sink_fetch_wait_ms": wait_ms, "sink_fetch_min_bytes": min_bytes}
    settings = _settings(monkeypatch, **values)
    sink = Sink(settings, client=object())  # type: ignore[arg-type]  # no Salesforce call is made
    try:
        sink._make_clients()
    finally:
        sink.pool.shutdown()
    consumer_config = next(c for c in _Recording.configs[-2:] if "group.id" in c)
    expected = (DEFAULT_WAIT, DEFAULT_MIN) if wait_ms is None else (wait_ms, min_bytes)
    assert (consumer_config["fetch.wait.max.ms"], consumer_config["fetch.min.bytes"]) == expected
