"""The delivered-events reader's broker requests (issue 16): its fetches wait on the broker (`fetch.min.bytes`,
`fetch.wait.max.ms` from `PAYSYNC_POLL_DELIVERED_FETCH_*`) instead of answering per produce request, and a coverage
check asks every partition's end offset in one request. Settings checked on their own; the end offsets on the real
broker."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pydantic import ValidationError

from paysync.settings import env_name, settings_env
from paysync.topics import STRIPE_EVENTS
from producers.pollers import delivered as delivered_module
from producers.pollers.delivered import DeliveredEvents
from producers.pollers.settings import PollerSettings
from producers.pollers.wiring import open_delivered_events
from producers.publisher import KafkaPublisher, producer_config


def _settings(monkeypatch: pytest.MonkeyPatch, **values: object) -> PollerSettings:
    for name, value in settings_env(PollerSettings, **values).items():
        monkeypatch.setenv(name, value)
    return PollerSettings()


def test_the_reader_fetch_defaults_and_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(monkeypatch)
    assert (settings.poll_delivered_fetch_wait_ms, settings.poll_delivered_fetch_min_bytes) == (1000, 1_048_576)
    assert env_name(PollerSettings, "poll_delivered_fetch_wait_ms") == "PAYSYNC_POLL_DELIVERED_FETCH_WAIT_MS"
    assert env_name(PollerSettings, "poll_delivered_fetch_min_bytes") == "PAYSYNC_POLL_DELIVERED_FETCH_MIN_BYTES"
    chosen = _settings(monkeypatch, poll_delivered_fetch_wait_ms=500, poll_delivered_fetch_min_bytes=1)
    assert (chosen.poll_delivered_fetch_wait_ms, chosen.poll_delivered_fetch_min_bytes) == (500, 1)


def test_a_fetch_wait_that_would_keep_the_set_stale_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError) as caught:
        _settings(monkeypatch, poll_delivered_max_behind_s=10, poll_delivered_fetch_wait_ms=5001)
    message = str(caught.value)
    assert "PAYSYNC_POLL_DELIVERED_FETCH_WAIT_MS" in message and "PAYSYNC_POLL_DELIVERED_MAX_BEHIND_S" in message
    assert _settings(monkeypatch, poll_delivered_max_behind_s=10,
                     poll_delivered_fetch_wait_ms=5000).poll_delivered_fetch_wait_ms == 5000
    with pytest.raises(ValidationError):
        _settings(monkeypatch, poll_delivered_fetch_min_bytes=0)


class _RecordingConsumer:
    """Stands in for confluent_kafka.Consumer: remembers its config, then cannot reach the topic."""

    configs: list[dict[str, Any]] = []
    opened = threading.Event()

    def __init__(self, config: dict[str, Any]) -> None:
        _RecordingConsumer.configs.append(config)
        _RecordingConsumer.opened.set()

    def list_topics(self, *_args: Any, **_kwargs: Any) -> Any:
        raise KafkaException("no broker in this test")

    def close(self) -> None:
        pass


def test_the_settings_reach_the_reader_consumer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivered_module, "Consumer", _RecordingConsumer)
    settings = _settings(monkeypatch, poll_delivered_fetch_wait_ms=700, poll_delivered_fetch_min_bytes=4096)
    reader = open_delivered_events(settings, {"bootstrap.servers": "127.0.0.1:1"})
    assert reader is not None
    try:
        assert _RecordingConsumer.opened.wait(10)
    finally:
        reader.close()
    config = _RecordingConsumer.configs[-1]
    assert (config["fetch.wait.max.ms"], config["fetch.min.bytes"]) == (700, 4096)
    assert not reader.current()  # a reader that could not open never claims the set is current


def test_end_offsets_of_every_partition_in_one_ask_match_the_watermarks(kafka_bootstrap: str, topics: str) -> None:
    conf = {"bootstrap.servers": kafka_bootstrap}
    topic = STRIPE_EVENTS.full_name(topics)
    publisher = KafkaPublisher(producer_config(conf, 10_000)).start()
    try:
        publisher.publish_many_sync([(topic, "one-key", b"x")] * 3 + [(topic, "other-key", b"y")] * 2, timeout=10)
    finally:
        publisher.close()
    consumer = Consumer({**conf, "group.id": "unused-delivered-ends"})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = DeliveredEvents(conf, topic)._ends(consumer, partitions)
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                 for p in partitions}
    finally:
        consumer.close()
    assert ends == marks
    assert sum(ends.values()) == 5 and 0 in ends.values()  # the empty partitions too (end offset 0)


def test_end_offsets_of_a_partition_the_topic_lacks_raise(kafka_bootstrap: str, topics: str) -> None:
    conf = {"bootstrap.servers": kafka_bootstrap}
    topic = STRIPE_EVENTS.full_name(topics)
    consumer = Consumer({**conf, "group.id": "unused-delivered-ends"})
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        with pytest.raises(KafkaException):
            DeliveredEvents(conf, topic, delivered_module.DeliveredConfig(request_timeout_s=3))._ends(
                consumer, [*partitions, max(partitions) + 1])
    finally:
        consumer.close()
