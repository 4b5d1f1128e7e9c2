"""Each planted fault is named by `paysync doctor`, with its fix, and makes it exit non-zero."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulators.salesforce_emulator import start_emulator
from emulators.salesforce_emulator.handle import EmulatorHandle
from ops.doctor.stripe_events import needed_event_types

from .conftest import SIM_KEY, Deployment, failures, org_copy, sf_env

Doctor = Callable[..., tuple[int, dict[str, Any], str]]


@pytest.fixture(scope="module")
def old_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """An org with an older package: Stripe_Payout__c lacks Failure_Message__c, Stripe_Refund__c.Amount__c is Text."""
    tmp = tmp_path_factory.mktemp("old-org")
    source = org_copy(tmp)
    (source / "objects" / "Stripe_Payout__c" / "fields" / "Failure_Message__c.field-meta.xml").unlink()
    amount = source / "objects" / "Stripe_Refund__c" / "fields" / "Amount__c.field-meta.xml"
    text = re.sub(r"<precision>\d+</precision>\s*<scale>\d+</scale>", "<length>40</length>", amount.read_text())
    amount.write_text(text.replace("<type>Number</type>", "<type>Text</type>"))
    sf = start_emulator(tmp / "org.db", metadata_dir=str(source))
    yield sf
    sf.stop()


def test_a_missing_field_is_named_with_its_fix(deployment: Deployment, old_org: EmulatorHandle,
                                               run_doctor: Doctor) -> None:
    status, report, text = run_doctor({**deployment.env, **sf_env(old_org)}, "--only", "salesforce")
    assert status == 1 and report["ok"] is False
    payout = failures(report)["salesforce:object Stripe_Payout__c"]
    assert "Failure_Message__c missing" in payout["detail"]
    assert "sf project deploy start" in payout["fix"]
    assert "[FAIL] object Stripe_Payout__c" in text and "fix: deploy the package" in text


def test_a_wrong_field_type_is_named(deployment: Deployment, old_org: EmulatorHandle, run_doctor: Doctor) -> None:
    _, report, _ = run_doctor({**deployment.env, **sf_env(old_org)}, "--only", "salesforce")
    refund = failures(report)["salesforce:object Stripe_Refund__c"]
    assert "Amount__c is string, the package defines double" in refund["detail"]
    assert "salesforce:object Stripe_Payment__c" not in failures(report)  # the rest of the org is fine


def test_a_permission_set_not_assigned_is_named(deployment: Deployment, run_doctor: Doctor) -> None:
    deployment.sf.admin("POST", "/_emulator/permission_sets", {"assigned": ["Paysync_Integration_Orders"]})
    try:
        status, report, text = run_doctor(deployment.env, "--only", "salesforce")
    finally:
        deployment.sf.admin("POST", "/_emulator/permission_sets",
                            {"assigned": ["Paysync_Integration", "Paysync_Integration_Orders"]})
    assert status == 1
    failed = failures(report)
    permset = failed["salesforce:permission set Paysync_Integration"]
    assert "not in effect" in permset["detail"]
    assert "sf org assign permset --name Paysync_Integration" in permset["fix"]
    assert "salesforce:permission set Paysync_Integration_Orders" not in failed
    assert "not editable by the integration user" in failed["salesforce:object Stripe_Payment__c"]["detail"] or \
        "cannot create" in failed["salesforce:object Stripe_Payment__c"]["detail"]


def test_the_generic_login_host_is_named_with_the_my_domain_fix(deployment: Deployment, run_doctor: Doctor) -> None:
    env = {**deployment.env, "PAYSYNC_SALESFORCE_LOGIN_URL": deployment.sf.login_url}
    status, report, _ = run_doctor(env, "--only", "salesforce")
    login = failures(report)["salesforce:login"]
    assert status == 1 and "request not supported on this domain" in login["detail"]
    assert "My Domain" in login["fix"]


def test_a_wrong_my_domain_is_named(deployment: Deployment, run_doctor: Doctor) -> None:
    env = {**deployment.env, "PAYSYNC_SALESFORCE_LOGIN_URL": "https://127.0.0.1:9"}  # nothing listens there
    status, report, _ = run_doctor(env, "--only", "salesforce")
    login = failures(report)["salesforce:login"]
    assert status == 1 and "does not answer" in login["fix"] and "My Domain" in login["fix"]


def test_login_salesforce_com_with_client_credentials_is_refused_before_any_call(deployment: Deployment,
                                                                                 run_doctor: Doctor) -> None:
    env = {**deployment.env, "PAYSYNC_SALESFORCE_LOGIN_URL": "https://login.salesforce.com"}
    status, report, _ = run_doctor(env, "--only", "salesforce")
    assert status == 1 and "My Domain" in failures(report)["salesforce:settings"]["detail"]


def test_a_webhook_endpoint_missing_events_is_named(deployment: Deployment, run_doctor: Doctor,
                                                    tmp_path: Path) -> None:
    url = "https://partial.example/webhooks/stripe"
    events = [e for e in needed_event_types() if not e.startswith("charge.dispute.")]
    form = [("url", url), *((f"enabled_events[{i}]", e) for i, e in enumerate(events))]
    created = httpx.post(f"{deployment.sim.base_url}/v1/webhook_endpoints", data=dict(form),
                         headers={"Authorization": f"Bearer {SIM_KEY}"})
    assert created.status_code == 200, created.text
    status, report, _ = run_doctor({**deployment.env, "PAYSYNC_DOCTOR_WEBHOOK_URL": url}, "--only", "stripe")
    failed = failures(report)
    check = failed[f"stripe:webhook endpoint {created.json()['id']} events"]
    assert status == 1 and "missing 5 event type(s): charge.dispute.closed" in check["detail"]
    assert f"paysync stripe webhook-endpoint create --url {url}" in check["fix"]


def test_no_endpoint_for_the_url_is_named(deployment: Deployment, run_doctor: Doctor) -> None:
    url = "https://nowhere.example/webhooks/stripe"
    status, report, _ = run_doctor({**deployment.env, "PAYSYNC_DOCTOR_WEBHOOK_URL": url}, "--only", "stripe")
    assert status == 1 and failures(report)["stripe:webhook endpoint"]["fix"].endswith(f"--url {url}")


def test_a_refused_stripe_key_is_named(deployment: Deployment, run_doctor: Doctor) -> None:
    status, report, text = run_doctor({**deployment.env, "PAYSYNC_STRIPE_API_KEY": "rk_test_wrongwrongwrong"},
                                      "--only", "stripe")
    assert status == 1 and "HTTP 401" in failures(report)["stripe:API key"]["detail"]
    assert "wrongwrong" not in text and "wrongwrong" not in str(report)


def test_a_missing_topic_is_named(deployment: Deployment, run_doctor: Doctor) -> None:
    env = {**deployment.env, "PAYSYNC_TOPIC_PREFIX": "doctor-absent."}
    status, report, _ = run_doctor(env, "--only", "kafka")
    failed = failures(report)
    assert status == 1 and failed["kafka:topic doctor-absent.stripe.events"]["fix"].startswith("run `paysync topics`")
    assert "kafka:broker reachable" not in failed


def test_other_partition_counts_are_named(deployment: Deployment, run_doctor: Doctor) -> None:
    status, report, _ = run_doctor({**deployment.env, "PAYSYNC_TOPIC_PARTITIONS": "5"}, "--only", "kafka")
    prefix = deployment.env["PAYSYNC_TOPIC_PREFIX"]
    assert status == 1 and "2 partitions, configured 5" in failures(report)[f"kafka:topic {prefix}stripe.events"]["detail"]


def test_with_view_setup_the_assignments_are_read_directly(deployment: Deployment, run_doctor: Doctor,
                                                           tmp_path: Path) -> None:
    view_setup = tmp_path / "Viewer.permissionset-meta.xml"
    view_setup.write_text('<?xml version="1.0" encoding="UTF-8"?><PermissionSet xmlns="http://soap.sforce.com/2006/04/'
                          'metadata"><userPermissions><enabled>true</enabled><name>ViewSetup</name></userPermissions>'
                          '</PermissionSet>')
    sf = start_emulator(tmp_path / "org.db", permission_set_file=str(view_setup))
    try:
        sf.admin("POST", "/_emulator/permission_sets", {"assigned": ["Paysync_Integration"]})
        status, report, _ = run_doctor({**deployment.env, **sf_env(sf)}, "--only", "salesforce")
    finally:
        sf.stop()
    orders = failures(report)["salesforce:permission set Paysync_Integration_Orders"]
    assert status == 1 and orders["detail"] == "not assigned to the integration user"
    assert "--name Paysync_Integration_Orders" in orders["fix"]
    assert "salesforce:permission set Paysync_Integration" not in failures(report)
