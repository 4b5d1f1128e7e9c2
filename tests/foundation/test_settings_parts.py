"""Settings composed of shared parts: the same variables as the flat form, and environments written from the classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from paysync.settings import KafkaConnection, KafkaSettings, TopicSettings, env_name, settings_env
from producers.pollers.settings import PollerSettings
from producers.webhook.settings import WebhookSettings


def test_composed_parts_read_the_flat_forms_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://registry:8081")
    monkeypatch.setenv("PAYSYNC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("PAYSYNC_KAFKA_SASL_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("PAYSYNC_TOPIC_PREFIX", "blue.")
    monkeypatch.setenv("PAYSYNC_TOPIC_PARTITIONS", "3")
    webhook = WebhookSettings()
    flat = KafkaSettings()
    assert webhook.kafka == flat.kafka == KafkaConnection()
    assert webhook.topics == flat.topics == TopicSettings(prefix="blue.", partitions=3)
    assert webhook.kafka.confluent_config() == flat.confluent_config()
    assert flat.confluent_config()["sasl.password"] == "s3cret"
    assert webhook.kafka.schema_registry_url == "http://registry:8081"
    assert "s3cret" not in repr(webhook)


def test_an_invalid_shared_part_fails_the_component_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValueError, match="partitions"):
        PollerSettings()


def test_env_names_come_from_the_class_that_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_name(KafkaConnection, "bootstrap_servers") == "KAFKA_BOOTSTRAP_SERVERS"
    assert env_name(TopicSettings, "prefix") == "PAYSYNC_TOPIC_PREFIX"
    assert env_name(PollerSettings, "poll_interval_s") == "PAYSYNC_POLL_INTERVAL_S"
    with pytest.raises(KeyError):
        env_name(PollerSettings, "poll_interval")  # a renamed field fails loudly instead of drifting
    with pytest.raises(TypeError):
        env_name(PollerSettings, "kafka")
    env = {**settings_env(KafkaConnection, bootstrap_servers="broker-b:9092"),
           **settings_env(TopicSettings, prefix="p1.", partitions=2),
           **settings_env(PollerSettings, poll_interval_s=1.5, stripe_accounts=["acct_1", "acct_2"])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    poller = PollerSettings()
    assert poller.kafka.bootstrap_servers == "broker-b:9092"
    assert (poller.topics.prefix, poller.topics.partitions) == ("p1.", 2)
    assert poller.poll_interval_s == 1.5 and poller.stripe_accounts == ["acct_1", "acct_2"]
