"""`paysync doctor` on a good set-up: every check passes, nothing secret is printed; and
`paysync stripe webhook-endpoint create` registers exactly the events paysync maps and prints the secret once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from emulators.salesforce_emulator import DEFAULT_CREDENTIALS
from ops.doctor.stripe_events import needed_event_types
from producers.stripe_api import PINNED_API_VERSION

from .conftest import SIM_KEY, Deployment, by_name, failures

Doctor = Callable[..., tuple[int, dict[str, Any], str]]


def test_a_good_setup_passes_every_check(deployment: Deployment, run_doctor: Doctor) -> None:
    status, report, text = run_doctor(deployment.env)
    assert failures(report) == {}, text
    assert status == 0 and report["ok"] is True
    checks = by_name(report)
    for needed in ("salesforce:login", "salesforce:API version", "salesforce:object Stripe_Payment__c",
                   "salesforce:object Order", "salesforce:permission set Paysync_Integration",
                   "salesforce:permission set Paysync_Integration_Orders", "stripe:API key", "stripe:webhook endpoint",
                   "kafka:broker reachable", f"kafka:topic {deployment.env['PAYSYNC_TOPIC_PREFIX']}stripe.events"):
        assert checks[needed]["status"] == "ok", (needed, text)
    assert "test mode" in checks["stripe:API key"]["detail"]
    assert "0 failed: ready" in text
    for secret in (SIM_KEY, deployment.webhook_secret, DEFAULT_CREDENTIALS["client_secret"]):
        assert secret not in text and secret not in str(report)


def test_webhook_endpoint_create_registers_exactly_the_mapped_events(deployment: Deployment,
                                                                     create_endpoint: Callable[..., str]) -> None:
    out = create_endpoint(deployment.env, "https://other.example/hook")
    secrets = [w for w in out.split() if w.startswith("whsec_")]
    assert len(secrets) == 1 and "PAYSYNC_WEBHOOK_SECRETS" in out
    listed = httpx.get(f"{deployment.sim.base_url}/v1/webhook_endpoints", params={"limit": 100},
                       headers={"Authorization": f"Bearer {SIM_KEY}"}).json()["data"]
    endpoint = next(e for e in listed if e["url"] == "https://other.example/hook")
    assert sorted(endpoint["enabled_events"]) == list(needed_event_types())
    assert endpoint["api_version"] == PINNED_API_VERSION and endpoint["status"] == "enabled"
    assert "secret" not in endpoint  # only returned at creation


def test_the_needed_events_cover_what_the_simulator_sends() -> None:
    sent = {"charge.succeeded", "charge.refunded", "charge.dispute.created", "refund.updated", "payout.paid",
            "invoice.paid", "payment_intent.succeeded", "customer.updated"}
    assert sent <= set(needed_event_types())
    assert "invoice.upcoming" not in needed_event_types()  # its object has no id
