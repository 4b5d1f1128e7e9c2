"""Issue 14 point 1: client credentials only on a My Domain host, a refused login stops the sink at start-up
with one clear line, and the JWT `aud` is its own setting, not the token host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from sinks.auth import Authenticator
from sinks.settings import SalesforceSettings

SINK = [sys.executable, "-m", "ops.cli", "sink"]


def _run_sink(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`paysync sink` with only `env` for Salesforce; a sink that keeps running fails the test (TimeoutExpired)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PAYSYNC_SALESFORCE")}
    return subprocess.run(SINK, env={**clean, **env, "PAYSYNC_TOPIC_PREFIX": "login-test."}, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("login_url", [None, "https://login.salesforce.com", "https://test.salesforce.com/"])
def test_client_credentials_without_a_my_domain_url_is_refused_at_start_up(login_url: str | None) -> None:
    env = {"PAYSYNC_SALESFORCE_AUTH_FLOW": "client_credentials", "PAYSYNC_SALESFORCE_CLIENT_ID": "id",
           "PAYSYNC_SALESFORCE_CLIENT_SECRET": "secret-value", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    if login_url is not None:
        env["PAYSYNC_SALESFORCE_LOGIN_URL"] = login_url
    done = _run_sink(env, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "PAYSYNC_SALESFORCE_LOGIN_URL" in done.stderr and "secret-value" not in done.stderr


def test_a_login_refused_by_salesforce_ends_the_sink_with_one_clear_line(emulator: Any) -> None:
    h = emulator.handle
    login_url = getattr(h, "login_url", None)
    if login_url is None:
        pytest.skip("the emulator has no generic login host yet")
    env = {"PAYSYNC_SALESFORCE_LOGIN_URL": login_url, "PAYSYNC_SALESFORCE_AUTH_FLOW": "client_credentials",
           "PAYSYNC_SALESFORCE_CLIENT_ID": h.credentials["client_id"],
           "PAYSYNC_SALESFORCE_CLIENT_SECRET": h.credentials["client_secret"],
           "PAYSYNC_SALESFORCE_CA_BUNDLE": str(h.ca_cert_path), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    done = _run_sink(env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("paysync sink:")]
    assert len(lines) == 1 and "invalid_grant" in lines[0] and "PAYSYNC_SALESFORCE_LOGIN_URL" in lines[0], done.stderr
    assert h.credentials["client_secret"] not in done.stderr


def test_jwt_audience_is_its_own_setting_not_the_token_host(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    common: dict[str, Any] = {"salesforce_auth_flow": "jwt", "salesforce_client_id": "cid",
                              "salesforce_username": "u@example.com", "salesforce_private_key": pem,
                              "salesforce_login_url": "https://acme.my.salesforce.com"}
    for extra, audience in (({}, "https://login.salesforce.com"),
                            ({"salesforce_jwt_audience": "https://test.salesforce.com"}, "https://test.salesforce.com")):
        form = Authenticator(SalesforceSettings(**common, **extra), requests.Session())._form()
        claims = jwt.decode(form["assertion"], options={"verify_signature": False})
        assert claims["aud"] == audience


def test_each_flow_logs_in_on_the_my_domain_host_with_the_default_audience(emulator: Any) -> None:
    """The strict emulator checks `aud` against login.salesforce.com (or its login URL) and the host."""
    from tests.sink.test_sink_auth import settings_for
    from sinks.client import SalesforceClient
    from sinks.metrics import SinkMetrics

    for flow in ("client_credentials", "jwt"):
        client = SalesforceClient(settings_for(emulator, flow), SinkMetrics())
        client.open_session()
        assert client.logins == 1
