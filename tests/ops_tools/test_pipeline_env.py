"""The local pipeline's component environment is read back by each component's settings class as written."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ops.pipeline import WEBHOOK_SECRETS, LocalPipeline, PipelineOptions
from producers.pollers.settings import PollerSettings
from producers.webhook.settings import WebhookSettings
from sinks.settings import SinkSettings
from streams.settings import StreamSettings


def test_every_component_reads_the_environment_the_pipeline_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pipeline = LocalPipeline(PipelineOptions(workdir=tmp_path, bootstrap="broker-x:9092", partitions=4,
                                             poll_interval_s=2.5))
    pipeline.ports = {"webhook": 18001, "webhook_metrics": 18002, "poll_metrics": 18003}
    stripe: Any = SimpleNamespace(api_key="sk_test_pipeline", base_url="http://127.0.0.1:18004")
    pipeline.stripe = stripe
    pipeline.sf = SimpleNamespace(base_url="https://127.0.0.1:18005", ca_cert_path=tmp_path / "ca.pem")
    for name, value in pipeline.component_env().items():
        monkeypatch.setenv(name, value)
    webhook, poller, stream, sink = WebhookSettings(), PollerSettings(), StreamSettings(), SinkSettings()
    for composed in (webhook, poller, stream, sink):
        assert composed.kafka.bootstrap_servers == "broker-x:9092"
        assert (composed.topics.prefix, composed.topics.partitions) == (pipeline.prefix, 4)
    assert webhook.secret_bytes() == [s.encode() for s in WEBHOOK_SECRETS]
    assert (webhook.webhook_port, webhook.webhook_metrics_port) == (18001, 18002)
    assert poller.stripe_api_key.get_secret_value() == "sk_test_pipeline"
    assert (poller.stripe_api_base, poller.poll_interval_s, poller.poll_initial_lookback_s) == (
        "http://127.0.0.1:18004", 2.5, 3 * 86400)
    assert poller.poller_metrics_port == 18003
    assert stream.stream_app_id == "paysync-streams"
    assert sink.salesforce.salesforce_login_url == "https://127.0.0.1:18005"
    assert sink.salesforce.salesforce_client_secret is not None
    assert sink.salesforce.salesforce_ca_bundle == str(tmp_path / "ca.pem")
    assert sink.sink_group_id == pipeline.sink_group() and sink.salesforce.missing_credentials() == []
