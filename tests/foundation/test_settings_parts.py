"""Settings composed of shared parts: every component reads a part from the same variables, and environments are
written from the class that reads them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import MappingSettings, mapping_config
from ops.reconcile import ReconcileSettings
from paysync.settings import KafkaConnection, TopicSettings, env_name, settings_env
from producers.pollers.settings import PollerSettings
from producers.webhook.settings import WebhookSettings
from sinks.settings import SalesforceSettings, SinkSettings
from streams.settings import StreamSettings


@pytest.fixture
def shared_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One value for every shared variable, the Kafka and Salesforce secrets from files."""
    kafka_secret, sf_secret = tmp_path / "kafka-pw", tmp_path / "sf-secret"
    kafka_secret.write_text("s3cret-kafka\n")
    sf_secret.write_text("s3cret-salesforce\n")
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "broker-a:9092", "SCHEMA_REGISTRY_URL": "http://registry:8081",
        "PAYSYNC_KAFKA_SASL_MECHANISM": "PLAIN", "PAYSYNC_KAFKA_SASL_USERNAME": "paysync",
        "PAYSYNC_KAFKA_SASL_PASSWORD_FILE": str(kafka_secret),
        "PAYSYNC_TOPIC_PREFIX": "blue.", "PAYSYNC_TOPIC_PARTITIONS": "3", "PAYSYNC_TOPIC_REPLICATION_FACTOR": "3",
        "PAYSYNC_MAPPING_CUSTOMER_TARGET": "Contact",
        "PAYSYNC_SALESFORCE_LOGIN_URL": "https://acme.my.salesforce.com", "PAYSYNC_SALESFORCE_CLIENT_ID": "cid",
        "PAYSYNC_SALESFORCE_CLIENT_SECRET_FILE": str(sf_secret),
        "PAYSYNC_STREAM_APP_ID": "streams", "PAYSYNC_SINK_GROUP_ID": "sink",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("shared_env")
def test_every_component_reads_its_parts_from_the_same_variables() -> None:
    webhook, poller, stream, sink, reconcile = (
        WebhookSettings(), PollerSettings(), StreamSettings(), SinkSettings(), ReconcileSettings())
    topics = TopicSettings(prefix="blue.", partitions=3, replication_factor=3)
    for component in (webhook, poller, stream, sink, reconcile):
        assert component.kafka == KafkaConnection(), type(component).__name__
        assert component.kafka.bootstrap_servers == "broker-a:9092"
        assert component.kafka.schema_registry_url == "http://registry:8081"
        assert component.kafka.confluent_config()["sasl.password"] == "s3cret-kafka"
        assert component.topics == topics, type(component).__name__
        assert "s3cret" not in repr(component) and "s3cret" not in str(component)
    assert sink.salesforce == reconcile.salesforce == SalesforceSettings()
    assert sink.salesforce.salesforce_client_secret is not None
    assert sink.salesforce.salesforce_client_secret.get_secret_value() == "s3cret-salesforce"
    assert sink.salesforce.missing_credentials() == [] and sink.salesforce.token_url() == "https://acme.my.salesforce.com"
    assert (stream.app_id, sink.sink_group_id) == ("blue.streams", "sink")
    assert stream.mapping == MappingSettings()
    assert mapping_config(stream.mapping) == mapping_config() and mapping_config().customer_target == "Contact"


@pytest.mark.usefixtures("shared_env")
def test_a_part_given_in_code_replaces_only_that_part() -> None:
    sink = SinkSettings(topics=TopicSettings(prefix="green."), sink_group_id="other")
    assert (sink.topics.prefix, sink.topics.partitions) == ("green.", 3)  # the rest of the part still from the env
    assert sink.kafka.bootstrap_servers == "broker-a:9092" and sink.sink_group_id == "other"
    with pytest.raises(ValidationError, match="topic_prefix"):
        SinkSettings(topic_prefix="green.")  # a part's field given flat is refused, not silently ignored
    with pytest.raises(ValidationError, match="salesforce_login_url"):
        StreamSettings(salesforce_login_url="https://x")  # another component's field


def test_an_invalid_shared_part_fails_the_component_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_TOPIC_PARTITIONS", "0")
    for component in (PollerSettings, StreamSettings, SinkSettings):
        with pytest.raises(ValueError, match="partitions"):
            component()


def test_env_names_come_from_the_class_that_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_name(KafkaConnection, "bootstrap_servers") == "KAFKA_BOOTSTRAP_SERVERS"
    assert env_name(TopicSettings, "prefix") == "PAYSYNC_TOPIC_PREFIX"
    assert env_name(PollerSettings, "poll_interval_s") == "PAYSYNC_POLL_INTERVAL_S"
    assert env_name(SalesforceSettings, "salesforce_login_url") == "PAYSYNC_SALESFORCE_LOGIN_URL"
    assert env_name(MappingSettings, "mapping_customer_target") == "PAYSYNC_MAPPING_CUSTOMER_TARGET"
    with pytest.raises(KeyError):
        env_name(PollerSettings, "poll_interval")  # a renamed field fails loudly instead of drifting
    with pytest.raises(KeyError):
        env_name(SinkSettings, "salesforce_login_url")  # a part's field: name the part's class
    for composed, part in ((PollerSettings, "kafka"), (StreamSettings, "mapping"), (SinkSettings, "salesforce")):
        with pytest.raises(TypeError):
            env_name(composed, part)
    env = {**settings_env(KafkaConnection, bootstrap_servers="broker-b:9092"),
           **settings_env(TopicSettings, prefix="p1.", partitions=2),
           **settings_env(PollerSettings, poll_interval_s=1.5, stripe_accounts=["acct_1", "acct_2"])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    poller = PollerSettings()
    assert poller.kafka.bootstrap_servers == "broker-b:9092"
    assert (poller.topics.prefix, poller.topics.partitions) == ("p1.", 2)
    assert poller.poll_interval_s == 1.5 and poller.stripe_accounts == ["acct_1", "acct_2"]
