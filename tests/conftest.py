"""Shared fixtures. `kafka_bootstrap` is the one real broker every Kafka test uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.broker import BrokerConfig, BrokerError, start, stop
from paysync.net import free_port

# real Stripe payloads, captured from ../shared/fixtures/stripe with their origins (tests/fixtures/stripe/SOURCES.md)
STRIPE_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe"


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka cluster: `KAFKA_BOOTSTRAP_SERVERS` if set, else a local KRaft broker, else testcontainers."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    cfg = BrokerConfig(
        port=free_port(), controller_port=free_port(), data_dir=tmp_path_factory.mktemp("kafka")
    )
    try:
        bootstrap, _ = start(cfg, fresh=True, timeout=120)
    except BrokerError as exc:
        if not _docker_engine():
            pytest.fail(f"no Kafka broker: {exc}")
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()
        return
    try:
        yield bootstrap
    finally:
        stop(cfg)


@pytest.fixture(scope="session")
def kafka_env(kafka_bootstrap: str) -> Iterator[None]:
    """Point every settings object at the test broker for the whole session."""
    old = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
    yield
    if old is None:
        os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    else:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = old


@pytest.fixture
def topic_prefix() -> str:
    """A prefix unique to one test, so tests on the shared broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture(scope="session")
def stripe_fixtures() -> Path:
    """`tests/fixtures/stripe`: real Stripe payloads kept in the repository, so no test depends on ../shared."""
    return STRIPE_FIXTURES
