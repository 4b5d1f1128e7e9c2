"""A deployment for `paysync doctor`: the Salesforce emulator, the Stripe simulator with a webhook endpoint made by
`paysync stripe webhook-endpoint create`, and paysync's topics on the dev broker; `doctor(env)` runs it in-process
and returns (exit status, the JSON checklist, the text output)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from emulators.salesforce_emulator import DEFAULT_CREDENTIALS, start_emulator
from emulators.salesforce_emulator.handle import EmulatorHandle
from emulators.stripe_simulator.handle import SimulatorHandle, start_simulator
from ops import doctor as doctor_cmd
from ops import stripe_cmd
from paysync.paths import SALESFORCE_PROJECT_DIR
from paysync.topics import create_topics

WEBHOOK_URL = "https://paysync.example/webhooks/stripe"
SIM_KEY = "sk_test_doctorsim"
PARTITIONS = 2


@dataclass
class Deployment:
    sf: EmulatorHandle
    sim: SimulatorHandle
    env: dict[str, str]
    webhook_secret: str


def org_copy(tmp_path: Path) -> Path:
    """A copy of the SFDX project (both package directories) to plant faults in; returns the main source folder."""
    project = tmp_path / "salesforce"
    shutil.copytree(SALESFORCE_PROJECT_DIR, project, ignore=shutil.ignore_patterns("node_modules", ".sf*"))
    return project / "force-app" / "main" / "default"


def sf_env(sf: EmulatorHandle) -> dict[str, str]:
    return {"PAYSYNC_SALESFORCE_LOGIN_URL": sf.base_url, "PAYSYNC_SALESFORCE_AUTH_FLOW": "client_credentials",
            "PAYSYNC_SALESFORCE_CLIENT_ID": DEFAULT_CREDENTIALS["client_id"],
            "PAYSYNC_SALESFORCE_CLIENT_SECRET": DEFAULT_CREDENTIALS["client_secret"],
            "PAYSYNC_SALESFORCE_CA_BUNDLE": str(sf.ca_cert_path), "PAYSYNC_SALESFORCE_API_VERSION": "59.0"}


@pytest.fixture(scope="module")
def topics_prefix(kafka_bootstrap: str) -> str:
    prefix = f"doc{uuid.uuid4().hex[:8]}."
    create_topics({"bootstrap.servers": kafka_bootstrap}, prefix, partitions=PARTITIONS)
    return prefix


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, topics_prefix: str,
               ) -> Iterator[Deployment]:
    sf = start_emulator(tmp_path_factory.mktemp("sf") / "org.db")
    sim = start_simulator(seed=17, api_key=SIM_KEY)
    env = {**sf_env(sf), "PAYSYNC_STRIPE_API_KEY": SIM_KEY, "PAYSYNC_STRIPE_API_BASE": sim.base_url,
           "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PAYSYNC_TOPIC_PREFIX": topics_prefix,
           "PAYSYNC_TOPIC_PARTITIONS": str(PARTITIONS), "PAYSYNC_DOCTOR_WEBHOOK_URL": WEBHOOK_URL}
    try:
        sim.generate(events=40)
        out = io.StringIO()
        with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out):
            assert stripe_cmd.main(["webhook-endpoint", "create", "--url", WEBHOOK_URL]) == 0
        secret = next(w for w in out.getvalue().split() if w.startswith("whsec_"))
        yield Deployment(sf, sim, {**env, "PAYSYNC_WEBHOOK_SECRETS": secret}, secret)
    finally:
        sim.stop()
        sf.stop()


@pytest.fixture
def run_doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               ) -> Callable[..., tuple[int, dict[str, Any], str]]:
    """`run_doctor(env, *args)`: (exit status, parsed --json output, text output) with exactly `env` set."""
    def run(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
        for name in [n for n in os.environ if n.startswith("PAYSYNC_") or n == "KAFKA_BOOTSTRAP_SERVERS"]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        status = doctor_cmd.main(["--json", *args])
        report = json.loads(capsys.readouterr().out)
        text_status = doctor_cmd.main(list(args))
        text = capsys.readouterr().out
        assert text_status == status
        return status, report, text
    return run


@pytest.fixture
def create_endpoint(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """`create_endpoint(env, url)`: runs `paysync stripe webhook-endpoint create`, returns its stdout."""
    def create(env: dict[str, str], url: str, *extra: str) -> str:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        assert stripe_cmd.main(["webhook-endpoint", "create", "--url", url, *extra]) == 0
        return capsys.readouterr().out
    return create


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{c['system']}:{c['name']}": c for c in report["checks"]}


def failures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: c for k, c in by_name(report).items() if c["status"] == "fail"}
