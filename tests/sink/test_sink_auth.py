"""The sink logs in to the emulator with each configured OAuth flow and reuses its session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from sinks.auth import AuthError, Authenticator
from sinks.client import SalesforceClient
from sinks.metrics import SinkMetrics
from sinks.settings import SalesforceSettings


def settings_for(emulator: Any, flow: str, **extra: Any) -> SalesforceSettings:
    h = emulator.handle
    c = h.credentials
    base: dict[str, Any] = {"salesforce_login_url": h.base_url, "salesforce_ca_bundle": str(h.ca_cert_path),
                            "salesforce_auth_flow": flow, "salesforce_client_id": c["client_id"]}
    if flow in ("client_credentials", "password"):
        base["salesforce_client_secret"] = c["client_secret"]
    if flow == "password":
        base |= {"salesforce_username": c["username"], "salesforce_password": c["password"] + c["security_token"]}
    if flow == "jwt":
        base |= {"salesforce_username": c["username"],
                 "salesforce_private_key": Path(c["jwt_private_key_file"]).read_text()}
    return SalesforceSettings(**(base | extra))


@pytest.mark.parametrize("flow", ["client_credentials", "password", "jwt"])
def test_each_flow_logs_in_and_the_session_is_reused(emulator: Any, flow: str) -> None:
    client = SalesforceClient(settings_for(emulator, flow), SinkMetrics())
    client.probe_budget()  # no /limits: the integration user has no View Setup
    client.query("SELECT Id FROM Account")
    assert client.logins == 1 and client.budget.max > 0


def test_bad_secret_is_refused_without_leaking_it(emulator: Any) -> None:
    s = settings_for(emulator, "client_credentials", salesforce_client_secret="wrong-secret-value")
    with pytest.raises(AuthError) as info:
        Authenticator(s, requests.Session()).login()
    assert not info.value.retriable and "wrong-secret-value" not in str(info.value)
    assert "wrong-secret-value" not in repr(s)
