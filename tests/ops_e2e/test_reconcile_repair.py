"""`paysync reconcile` finds every kind of drift planted in Salesforce, and `--repair` puts it right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from ops.pipeline import LocalPipeline

from .conftest import salesforce_session, wait_sink_idle


def reconcile_cli(p: LocalPipeline, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**p.env, "PAYSYNC_LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-m", "ops.cli", "reconcile", "--simulator", p.stripe.base_url,  # type: ignore[union-attr]
                          "--json", *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def soql(p: LocalPipeline, query: str) -> list[dict[str, Any]]:
    session, token, instance = salesforce_session(p)
    resp = session.get(f"{instance}/services/data/v59.0/query", params={"q": query},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    resp.raise_for_status()
    return resp.json()["records"]  # type: ignore[no-any-return]


def test_clean_then_each_planted_drift_is_found_and_repaired(pipeline: LocalPipeline) -> None:
    status, report = reconcile_cli(pipeline)
    assert status == 0, report["drifts"][:10]
    assert report["summary"]["clean"] and report["summary"]["expected_records"] > 100
    assert all(row["reconciled"] + row["manual"] == row["stripe_payouts"] and row["manual"] == row["stripe_manual"]
               for row in report["payout_totals"])

    session, token, instance = salesforce_session(pipeline)
    api = f"{instance}/services/data/v59.0"
    auth = {"Authorization": f"Bearer {token}"}
    payments = soql(pipeline, "SELECT Id, Stripe_Charge_Id__c, Status__c FROM Stripe_Payment__c "
                              "WHERE Status__c = 'Succeeded' ORDER BY Stripe_Charge_Id__c LIMIT 3")
    assert len(payments) == 3
    gone, changed, stale = payments
    # missing: a record deleted in Salesforce
    assert session.delete(f"{api}/sobjects/Stripe_Payment__c/{gone['Id']}", headers=auth).status_code == 204
    # mismatch: an amount edited by hand
    assert session.patch(f"{api}/sobjects/Stripe_Payment__c/{changed['Id']}", headers=auth,
                         json={"Amount__c": "0.01"}).status_code == 204
    # stale: an older status
    assert session.patch(f"{api}/sobjects/Stripe_Payment__c/{stale['Id']}", headers=auth,
                         json={"Status__c": "Pending"}).status_code == 204
    # extra: a payment Stripe never made
    created = session.post(f"{api}/sobjects/Stripe_Payment__c", headers=auth,
                           json={"Stripe_Charge_Id__c": "ch_not_in_stripe", "Currency__c": "USD"})
    assert created.status_code == 201, created.text

    status, report = reconcile_cli(pipeline)
    assert status == 1
    found = {(d["kind"], d["external_id"], d["field"]) for d in report["drifts"]}
    planted = {
        ("missing", gone["Stripe_Charge_Id__c"], None),
        ("mismatch", changed["Stripe_Charge_Id__c"], "Amount__c"),
        ("stale", stale["Stripe_Charge_Id__c"], "Status__c"),
        ("extra", "ch_not_in_stripe", None),
    }
    assert planted <= found
    # Deleting a payment clears the lookups that pointed at it (SetNull), as in Salesforce: those drift too.
    knock_on = found - planted
    assert knock_on, "the deleted payment's balance transaction should have lost its Payment__c lookup"
    assert {(kind, field) for kind, _, field in knock_on} == {("mismatch", "Payment__r.Stripe_Charge_Id__c")}

    status, report = reconcile_cli(pipeline, "--repair")
    assert report["repaired"] >= 3
    wait_sink_idle(pipeline)
    status, report = reconcile_cli(pipeline)
    # paysync never deletes: the extra record is still reported, everything else is repaired
    assert [(d["kind"], d["external_id"]) for d in report["drifts"]] == [("extra", "ch_not_in_stripe")]
    assert status == 1
    assert session.delete(f"{api}/sobjects/Stripe_Payment__c/{created.json()['id']}", headers=auth).status_code == 204
    assert reconcile_cli(pipeline)[0] == 0


def test_text_report_and_exit_status(pipeline: LocalPipeline) -> None:
    out = subprocess.run([sys.executable, "-m", "ops.cli", "reconcile", "--simulator",
                          pipeline.stripe.base_url], env=pipeline.env,  # type: ignore[union-attr]
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "CLEAN: Salesforce matches Stripe" in out.stdout
    assert "USD" in out.stdout and "reconciled" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ops.cli", "reconcile"],
                         env={k: v for k, v in os.environ.items() if not k.startswith("PAYSYNC_")},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
