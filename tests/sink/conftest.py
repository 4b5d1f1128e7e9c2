"""Fixtures for the sink's integration tests: the Salesforce emulator, topics, producing upserts, SOQL."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paysync.codec import AvroCodec
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, create_topics


class Emu:
    """The running emulator plus admin helpers."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def env(self) -> dict[str, str]:
        """The sink's Salesforce settings for this emulator (client-credentials flow)."""
        c = self.handle.credentials
        return {
            "PAYSYNC_SALESFORCE_LOGIN_URL": self.handle.base_url,
            "PAYSYNC_SALESFORCE_AUTH_FLOW": "client_credentials",
            "PAYSYNC_SALESFORCE_CLIENT_ID": c["client_id"],
            "PAYSYNC_SALESFORCE_CLIENT_SECRET": c["client_secret"],
            "PAYSYNC_SALESFORCE_CA_BUNDLE": str(self.handle.ca_cert_path),
        }

    def faults(self, **knobs: Any) -> None:
        self.handle.set_faults(**knobs)

    def reset_limits(self) -> None:
        self.handle.admin("POST", "/_emulator/limits/reset")

    def stats(self) -> dict[str, Any]:
        return dict(self.handle.stats())


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emu]:
    """A fresh Salesforce emulator (skips if it is not built yet)."""
    try:
        from emulators.salesforce_emulator import start_emulator
    except ImportError as exc:
        pytest.skip(f"Salesforce emulator not available: {exc}")
    handle = start_emulator(tmp_path / "sf.db", port=0)
    try:
        yield Emu(handle)
    finally:
        handle.stop()


@pytest.fixture
def sink_env(emulator: Emu, kafka_env: None, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for a sink on the test broker, the test's topics and the emulator; topics created."""
    env = {
        **emulator.env(),
        "PAYSYNC_TOPIC_PREFIX": topic_prefix,
        "PAYSYNC_TOPIC_PARTITIONS": "3",
        "PAYSYNC_SINK_GROUP_ID": f"{topic_prefix}sink",
        "PAYSYNC_SINK_BATCH_MAX_AGE_S": "0.3",
        "PAYSYNC_SINK_RETRY_BASE_S": "0.05",
        "PAYSYNC_SINK_RETRY_CAP_S": "1.0",
        "PAYSYNC_SINK_PARENT_WAIT_S": "1.0",
        "PAYSYNC_SINK_PAUSE_CHECK_S": "0.5",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from paysync.settings import KafkaConnection

    create_topics(KafkaConnection().confluent_config(), topic_prefix, 3)
    env["KAFKA_BOOTSTRAP_SERVERS"] = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    return env


def make_upsert(sobject: str, ext_field: str, ext_id: str, fields: dict[str, Any],
                parents: list[dict[str, str]] | None = None, event_id: str | None = None) -> dict[str, Any]:
    return {
        "sobject": sobject, "external_id_field": ext_field, "external_id": ext_id, "fields": fields,
        "parents": parents or [], "source_event_id": event_id, "version": "1:0:" + (event_id or "x"),
        "origin_topic": None, "origin_partition": None, "origin_offset": None,
        "ingested_at": int(time.time() * 1000),
    }


@pytest.fixture
def produce(sink_env: dict[str, str], topic_prefix: str) -> Callable[[list[Any]], None]:
    """Produce upserts (dicts) or raw bytes to `salesforce.upserts`, keyed `<SObject>:<external id>`."""
    from confluent_kafka import Producer

    from paysync.settings import KafkaConnection

    codec = AvroCodec()
    producer = Producer({**KafkaConnection().confluent_config(), "linger.ms": 20, "acks": "all"})
    topic = SALESFORCE_UPSERTS.full_name(topic_prefix)

    def _produce(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, tuple):  # (key, raw bytes)
                key, value = item
            else:
                key, value = f"{item['sobject']}:{item['external_id']}", codec.encode(SALESFORCE_UPSERTS.schema, item)
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.1)
        assert producer.flush(30) == 0

    return _produce


@pytest.fixture
def read_dead_letters(sink_env: dict[str, str], topic_prefix: str) -> Callable[[int, float], list[dict[str, Any]]]:
    """Read at least n dead letters (or until timeout) from the test's DLQ topic."""
    from confluent_kafka import Consumer

    from paysync.settings import KafkaConnection

    def _read(n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        codec = AvroCodec()
        consumer = Consumer({**KafkaConnection().confluent_config(), "group.id": f"{topic_prefix}dlq-reader",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([DEAD_LETTERS.full_name(topic_prefix)])
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < n and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None:
                    out.append(codec.decode(msg.value(), DEAD_LETTERS.schema))
        finally:
            consumer.close()
        return out

    return _read


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll `condition` until true or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class RunningSink:
    """A `Sink` running in a thread of the test process until `close()` (which must end it within 60 s)."""

    def __init__(self, **overrides: Any) -> None:
        from sinks.settings import SinkSettings
        from sinks.sink import Sink

        self.sink = Sink(SinkSettings(**overrides))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sink.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()


@pytest.fixture
def run_sink(sink_env: dict[str, str]) -> Iterator[Callable[..., RunningSink]]:
    """Start sinks with settings overrides (on the `sink_env` environment); every one is closed at the end."""
    started: list[RunningSink] = []

    def _start(**overrides: Any) -> RunningSink:
        started.append(RunningSink(**overrides))
        return started[-1]

    yield _start
    for s in started:
        s.close()
