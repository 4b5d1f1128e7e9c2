"""`/limits` needs View Setup and Configuration, read from the integration user's permission set; every REST and
Bulk answer — successes, errors, composite, bulk, query — carries `Sforce-Limit-Info`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from emulators.salesforce_emulator import EmulatorHandle, start_emulator

V = "/services/data/v59.0"
PERMSET = """<?xml version="1.0" encoding="UTF-8"?>
<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
    <label>Paysync Integration</label>{extra}
</PermissionSet>
"""
VIEW_SETUP = "<userPermissions><enabled>true</enabled><name>ViewSetup</name></userPermissions>"


def _start(folder: Path, grants: bool) -> EmulatorHandle:
    folder.mkdir(parents=True, exist_ok=True)
    permset = folder / "Paysync_Integration.permissionset-meta.xml"
    permset.write_text(PERMSET.format(extra=VIEW_SETUP if grants else
                                      "<userPermissions><enabled>true</enabled><name>ApiEnabled</name>"
                                      "</userPermissions>"))
    return start_emulator(folder / "org.sqlite3", permission_set_file=permset, bulk_queue_s=0)


@pytest.fixture(scope="module")
def orgs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorHandle, EmulatorHandle]]:
    base = tmp_path_factory.mktemp("limits")
    without, with_view_setup = _start(base / "without", False), _start(base / "with", True)
    yield without, with_view_setup
    without.stop()
    with_view_setup.stop()


def _session(handle: EmulatorHandle) -> requests.Session:
    c = handle.credentials
    token = requests.post(handle.base_url + "/services/oauth2/token", verify=str(handle.ca_cert_path), timeout=30,
                          data={"grant_type": "client_credentials", "client_id": c["client_id"],
                                "client_secret": c["client_secret"]}).json()["access_token"]
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides `verify`
    session.verify = str(handle.ca_cert_path)
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def test_limits_refused_without_view_setup(orgs: tuple[EmulatorHandle, EmulatorHandle]) -> None:
    without, _ = orgs
    resp = _session(without).get(without.base_url + V + "/limits", timeout=30)
    assert resp.status_code == 403
    assert resp.json()[0]["errorCode"] == "INSUFFICIENT_ACCESS"
    assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_limits_answered_when_the_permission_set_grants_view_setup(
        orgs: tuple[EmulatorHandle, EmulatorHandle]) -> None:
    _, granted = orgs
    resp = _session(granted).get(granted.base_url + V + "/limits", timeout=30)
    assert resp.status_code == 200
    assert resp.json()["DailyApiRequests"]["Max"] == 100_000


def test_every_api_answer_carries_the_limit_info_header(orgs: tuple[EmulatorHandle, EmulatorHandle]) -> None:
    handle, _ = orgs
    s, base = _session(handle), handle.base_url + V
    job = s.post(base + "/jobs/ingest", json={"object": "Stripe_Payout__c", "operation": "insert"}, timeout=30)
    answers = [
        s.get(base + "/query", params={"q": "SELECT Id FROM Account"}, timeout=30),
        s.get(base + "/query", params={"q": "SELECT Nope FROM Account"}, timeout=30),  # 400
        s.get(base + "/sobjects/Account/001000000000000AAA", timeout=30),  # 404
        s.post(base + "/composite", json={"compositeRequest": [
            {"method": "GET", "url": V + "/query?q=SELECT+Id+FROM+Account", "referenceId": "q"}]}, timeout=30),
        s.patch(base + "/composite/sobjects", json={"records": []}, timeout=30),
        job,
        s.get(base + f"/jobs/ingest/{job.json()['id']}", timeout=30),
        requests.get(base + "/query", params={"q": "SELECT Id FROM Account"}, verify=str(handle.ca_cert_path),
                     headers={"Authorization": "Bearer nope"}, timeout=30),  # 401
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 400, 404, 200, 200, 200, 200, 401]
    used = [int(a.headers["Sforce-Limit-Info"].split("=")[1].split("/")[0]) for a in answers]
    assert sorted(used[:7]) == list(range(min(used), min(used) + 7))  # each of these calls counted once
    assert all(a.headers["Sforce-Limit-Info"].endswith("/100000") for a in answers)
