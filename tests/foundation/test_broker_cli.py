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
