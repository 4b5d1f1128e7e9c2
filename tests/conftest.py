"""Shared fixtures. `kafka_bootstrap` is the one real broker every Kafka test uses.

Under pytest-xdist (`make test`: `-n 3 --dist loadfile`) the controller starts that broker once, before the
workers, and hands its address to them in `KAFKA_BOOTSTRAP_SERVERS`; every test keeps to its own topics
(`topic_prefix`) and consumer groups, so the workers share it. Each test file runs whole on one worker
(`--dist loadfile`: its module fixtures start once), and the `tests/cluster/` files run together on one, as they
share one 3-node cluster and kill its nodes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.broker import BrokerConfig, BrokerError, start, stop
from paysync.net import free_port

# the broker the xdist controller started for its workers, stopped when the session ends
_SHARED_BROKER: BrokerConfig | None = None
_CLUSTER_TESTS_ID = "tests/cluster/"  # node ids are relative to the rootdir

# real Stripe payloads, captured from ../shared/fixtures/stripe with their origins (tests/fixtures/stripe/SOURCES.md)
STRIPE_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stripe"


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def _broker_config(data_dir: Path) -> BrokerConfig:
    """The tests' one broker: free ports, its data in `data_dir`."""
    return BrokerConfig(port=free_port(), controller_port=free_port(), data_dir=data_dir)


def _is_xdist_controller(config: pytest.Config) -> bool:
    workers = getattr(config.option, "numprocesses", None)
    return not hasattr(config, "workerinput") and bool(workers)


def pytest_configure(config: pytest.Config) -> None:
    """In the xdist controller, start the one broker the workers share (unless one is configured)."""
    global _SHARED_BROKER
    if not _is_xdist_controller(config) or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return
    cfg = _broker_config(Path(tempfile.mkdtemp(prefix="paysync-test-kafka-")))
    try:
        bootstrap, _ = start(cfg, fresh=True, timeout=120)
    except BrokerError:
        shutil.rmtree(cfg.data_dir, ignore_errors=True)
        return  # each worker's `kafka_bootstrap` tries again itself and says why it failed
    _SHARED_BROKER = cfg
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap  # the workers, started after this, inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the shared broker and remove its data."""
    global _SHARED_BROKER
    if _SHARED_BROKER is None:
        return
    cfg, _SHARED_BROKER = _SHARED_BROKER, None
    os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    stop(cfg)
    shutil.rmtree(cfg.data_dir, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown (and unused) when xdist is absent
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with the `tests/cluster/` files as one unit (they share one cluster and kill its nodes).

    A scheduler rather than `xdist_group` marks: pytest 9.2's structured node ids drop the group suffix xdist 3.8
    writes, so `--dist loadgroup` silently stops grouping (pytest-dev/pytest-xdist#1386).
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileOrClusterScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return _CLUSTER_TESTS_ID if path.startswith(_CLUSTER_TESTS_ID) else path

    return FileOrClusterScheduling(config, log)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka cluster: `KAFKA_BOOTSTRAP_SERVERS` if set, else a local KRaft broker, else testcontainers."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    cfg = _broker_config(tmp_path_factory.mktemp("kafka"))
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
