"""`paysync kafka start | stop | status` on a private broker: idempotent start, data kept, --fresh wipes, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from paysync.net import free_port

pytestmark = pytest.mark.slow


def paysync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture
def broker_args(tmp_path: Path) -> Iterator[list[str]]:
    args = ["--port", str(free_port()), "--controller-port", str(free_port()), "--data-dir", str(tmp_path / "kafka")]
    yield args
    paysync("kafka", "stop", *args)


def topics(port: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=10).topics)


def test_start_twice_stop_start_keeps_data_fresh_wipes(broker_args: list[str]) -> None:
    port = broker_args[1]
    first = paysync("kafka", "start", *broker_args)
    assert first.returncode == 0, first.stderr
    assert f"127.0.0.1:{port}" in first.stdout
    second = paysync("kafka", "start", *broker_args)
    assert second.returncode == 0 and "already running" in second.stdout

    status = paysync("kafka", "status", *broker_args)
    assert status.returncode == 0 and "running" in status.stdout

    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    admin.create_topics([NewTopic("kept", 1, 1)])["kept"].result(20)
    assert "kept" in topics(port)

    assert paysync("kafka", "stop", *broker_args).returncode == 0
    down = paysync("kafka", "status", *broker_args)
    assert down.returncode == 3 and "not running" in down.stdout

    assert paysync("kafka", "start", *broker_args).returncode == 0
    assert "kept" in topics(port)

    fresh = paysync("kafka", "start", "--fresh", *broker_args)
    assert fresh.returncode == 0, fresh.stderr
    assert "kept" not in topics(port)


def test_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        result = paysync("kafka", "start", "--port", str(taken), "--controller-port", str(free_port()),
                         "--data-dir", str(tmp_path / "k"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {taken}" in lines[0] and "Traceback" not in result.stderr


def test_java_missing_is_one_clear_line(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # a PATH with python but no java
    result = paysync("kafka", "start", "--port", str(free_port()), "--controller-port", str(free_port()),
                     "--data-dir", str(tmp_path / "k"), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Java" in lines[0], result.stderr


def _ports(count: int) -> str:
    return ",".join(str(free_port()) for _ in range(count))


def test_three_node_cluster_start_twice_status_stop(tmp_path: Path) -> None:
    from ops.kafka_cluster import from_record

    ports, controllers = _ports(3), _ports(3)
    args = ["--nodes", "3", "--port", ports, "--controller-port", controllers, "--data-dir", str(tmp_path / "c")]
    try:
        first = paysync("kafka", "start", *args)
        assert first.returncode == 0, first.stderr
        bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports.split(","))
        assert f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}" in first.stdout
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        assert sorted(md.brokers) == [1, 2, 3]
        config = (tmp_path / "c" / "node2" / "server.properties").read_text()
        for line in ("default.replication.factor=3", "min.insync.replicas=2", "offsets.topic.replication.factor=3",
                     "transaction.state.log.replication.factor=3", "transaction.state.log.min.isr=2", "node.id=2"):
            assert line in config.splitlines()
        second = paysync("kafka", "start", *args)
        assert second.returncode == 0 and "already running" in second.stdout
        status = paysync("kafka", "status", "--data-dir", str(tmp_path / "c"))  # the data folder knows its cluster
        assert status.returncode == 0 and status.stdout.count("running (pid") == 3, status.stdout
    finally:
        stopped = paysync("kafka", "stop", "--data-dir", str(tmp_path / "c"))
    assert stopped.returncode == 0 and "3 nodes stopped" in stopped.stdout
    down = paysync("kafka", "status", "--data-dir", str(tmp_path / "c"))
    assert down.returncode == 3 and down.stdout.count("not running") == 3
    cluster = from_record(tmp_path / "c")
    assert cluster is not None and cluster.size == 3


def test_one_node_keeps_replication_one(broker_args: list[str], tmp_path: Path) -> None:
    assert paysync("kafka", "start", *broker_args).returncode == 0
    config = (tmp_path / "kafka" / "server.properties").read_text().splitlines()
    assert "default.replication.factor=1" in config and "offsets.topic.replication.factor=1" in config
    assert "min.insync.replicas=1" in config and "transaction.state.log.min.isr=1" in config


def test_cluster_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        result = paysync("kafka", "start", "--nodes", "3", "--port", f"{free_port()},{taken},{free_port()}",
                         "--controller-port", _ports(3), "--data-dir", str(tmp_path / "c"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {taken}" in lines[0] and "Traceback" not in result.stderr


def test_cluster_port_list_of_the_wrong_length_is_one_clear_line(tmp_path: Path) -> None:
    result = paysync("kafka", "start", "--nodes", "3", "--port", _ports(2), "--data-dir", str(tmp_path / "c"))
    assert result.returncode == 1 and "2 ports given for 3 node(s)" in result.stderr


def test_cluster_java_missing_is_one_clear_line(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    result = paysync("kafka", "start", "--nodes", "3", "--port", _ports(3), "--controller-port", _ports(3),
                     "--data-dir", str(tmp_path / "c"), env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Java" in lines[0], result.stderr
