"""docker-compose.yml validates with the Docker CLI's compose (or docker-compose v1) and wires what it should."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from paysync.paths import REPO_ROOT


def _compose_cmd() -> list[str]:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither the docker compose plugin nor docker-compose is installed")


def test_compose_file_validates_and_wires_every_service(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    shutil.copy(REPO_ROOT / ".env.example", tmp_path / ".env")
    shutil.copytree(REPO_ROOT / "dashboards", tmp_path / "dashboards")
    cmd = _compose_cmd()

    check = subprocess.run([*cmd, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    services = subprocess.run([*cmd, "config", "--services"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert set(services.stdout.split()) == {"kafka", "kafka-2", "kafka-3", "topics", "webhook", "poll", "stream", "sink", "prometheus", "grafana"}
    resolved = subprocess.run([*cmd, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
    assert "apache/kafka:3.9.1" in resolved
    assert "127.0.0.1" in resolved and "0.0.0.0:" not in resolved, "host ports bind to 127.0.0.1 by default"
    assert "alerts.yml" in resolved and "provisioning" in resolved


def test_compose_file_without_env_is_refused(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    cmd = _compose_cmd()
    check = subprocess.run([*cmd, "config", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert check.returncode != 0 and ".env" in (check.stderr + check.stdout)
