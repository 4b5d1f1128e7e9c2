"""The emulator's two base URLs, as Salesforce's login rules make them: the generic login host (login.salesforce.com
stand-in) and the org's My Domain. Client credentials only on My Domain; JWT `aud` must be the login host."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import requests

from emulators.salesforce_emulator import EmulatorHandle

TOKEN = "/services/oauth2/token"


def _post(handle: EmulatorHandle, base: str, form: dict[str, str]) -> requests.Response:
    return requests.post(base + TOKEN, data=form, verify=str(handle.ca_cert_path), timeout=30)


def _client_credentials(handle: EmulatorHandle) -> dict[str, str]:
    c = handle.credentials
    return {"grant_type": "client_credentials", "client_id": c["client_id"], "client_secret": c["client_secret"]}


def _assertion(handle: EmulatorHandle, aud: str) -> str:
    c = handle.credentials
    key = Path(c["jwt_private_key_file"]).read_bytes()
    claims: dict[str, Any] = {"iss": c["client_id"], "sub": c["username"], "aud": aud, "exp": int(time.time()) + 180}
    return jwt.encode(claims, key, algorithm="RS256")


def test_two_base_urls_on_one_ca(emulator: EmulatorHandle) -> None:
    assert emulator.login_url and emulator.login_url != emulator.base_url
    assert emulator.instance_url == emulator.base_url
    # the login host serves logins only, not the data API
    resp = requests.get(emulator.login_url + "/services/data/v59.0/limits", verify=str(emulator.ca_cert_path),
                        timeout=30)
    assert resp.status_code == 404


def test_client_credentials_refused_on_the_login_host_with_salesforces_body(emulator: EmulatorHandle) -> None:
    resp = _post(emulator, emulator.login_url, _client_credentials(emulator))
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "request not supported on this domain"}


def test_client_credentials_accepted_on_my_domain(emulator: EmulatorHandle) -> None:
    resp = _post(emulator, emulator.base_url, _client_credentials(emulator))
    assert resp.status_code == 200
    assert resp.json()["instance_url"] == emulator.base_url


def test_jwt_audience_must_be_the_login_host_not_the_token_host(emulator: EmulatorHandle) -> None:
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    for aud in ("https://login.salesforce.com", "https://test.salesforce.com", emulator.login_url):
        for host in (emulator.login_url, emulator.base_url):
            ok = _post(emulator, host, {"grant_type": grant, "assertion": _assertion(emulator, aud)})
            assert ok.status_code == 200, (aud, host, ok.text)
    refused = _post(emulator, emulator.base_url, {"grant_type": grant,
                                                  "assertion": _assertion(emulator, emulator.base_url)})
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}


def test_password_flow_and_soap_login_work_on_both_hosts(emulator: EmulatorHandle) -> None:
    c = emulator.credentials
    form = {"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"],
            "username": c["username"], "password": c["password"] + c["security_token"]}
    envelope = ('<?xml version="1.0" encoding="utf-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/'
                'envelope/" xmlns:urn="urn:partner.soap.sforce.com"><env:Body><urn:login>'
                f'<urn:username>{c["username"]}</urn:username><urn:password>{c["password"]}{c["security_token"]}'
                '</urn:password></urn:login></env:Body></env:Envelope>')
    for host in (emulator.login_url, emulator.base_url):
        assert _post(emulator, host, form).status_code == 200
        soap = requests.post(host + "/services/Soap/u/59.0", data=envelope.encode(), timeout=30,
                             headers={"Content-Type": "text/xml", "SOAPAction": "login"},
                             verify=str(emulator.ca_cert_path))
        assert soap.status_code == 200 and f"<serverUrl>{emulator.base_url}/" in soap.text
