"""Refusals: drifts of records with an open Stripe_Sync_Error__c row are set apart, the rest stay drift."""

from __future__ import annotations

from typing import Any

from ops.reconcile.compare import Drift, compare
from ops.reconcile.refusals import open_sync_errors, split_refused
from ops.reconcile.report import render_text, summary


class FakeReader:
    """Answers the one sync-error query with fixed rows, and records the SOQL it was asked."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.asked: list[str] = []

    def query(self, soql: str) -> list[dict[str, Any]]:
        self.asked.append(soql)
        return self.rows


def test_a_refused_record_is_explained_and_an_unrecorded_one_is_not() -> None:
    expected = {("Stripe_Payment__c", "ch_refused"): {"Amount__c": "500.00"},
                ("Stripe_Payment__c", "ch_lost"): {"Amount__c": "1.00"},
                ("Stripe_Refund__c", "re_stub"): {"Amount__c": "2.00", "Reason__c": None}}
    actual = {("Stripe_Refund__c", "re_stub"): {"Amount__c": None}, ("Stripe_Payment__c", "ch_extra"): {}}
    reader = FakeReader([{"Object_Id__c": "ch_refused", "Error_Code__c": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                          "Message__c": "Describe payments over 450"},
                         {"Object_Id__c": "re_stub", "Error_Code__c": "REQUIRED_FIELD_MISSING", "Message__c": "Reason"},
                         {"Object_Id__c": "ch_extra", "Error_Code__c": "X", "Message__c": "an extra is never explained"}])
    errors = open_sync_errors(reader)
    assert "Status__c IN ('New')" in reader.asked[0]
    unexplained, refused = split_refused(compare(expected, actual), errors)
    assert [(d.kind, d.external_id) for d in unexplained] == [("missing", "ch_lost"), ("extra", "ch_extra")]
    assert [(r.sobject, r.external_id, sorted(r.codes)) for r in refused] == [
        ("Stripe_Payment__c", "ch_refused", ["FIELD_CUSTOM_VALIDATION_EXCEPTION"]),
        ("Stripe_Refund__c", "re_stub", ["REQUIRED_FIELD_MISSING"])]
    assert [d.kind for d in refused[1].drifts] == ["mismatch"]
    s = summary(unexplained, 3, 2, refused=len(refused))
    assert (s["clean"], s["explained"], s["refused"], s["drifts"]) == (False, False, 2, 2)


def test_only_refusals_read_as_refused_not_clean() -> None:
    drifts = [Drift("missing", "Stripe_Refund__c", "re_1")]
    unexplained, refused = split_refused(drifts, {"re_1": [("REQUIRED_FIELD_MISSING", "Required fields are missing")]})
    s = summary(unexplained, 1, 0, refused=len(refused))
    assert (s["clean"], s["explained"]) == (False, True)
    text = render_text({"summary": s, "drifts": [], "refused": [r.as_dict() for r in refused], "payout_totals": []})
    assert text.splitlines()[0].endswith("REFUSED: 1 record(s) refused by Salesforce, each recorded in "
                                         "Stripe_Sync_Error__c; nothing else differs")
    assert "Stripe_Refund__c re_1: REQUIRED_FIELD_MISSING Required fields are missing" in text


def test_no_drift_is_clean() -> None:
    s = summary([], 5, 5)
    assert (s["clean"], s["explained"], s["refused"]) == (True, True, 0)


def test_fields_an_org_lacks_are_not_queried() -> None:
    from ops.reconcile.engine import present_fields

    wanted = {"Amount__c", "Order__c", "Payout__r.Stripe_Payout_Id__c", "Invoice__r.Stripe_Invoice_Id__c"}
    in_org = {"Amount__c", "Payout__c"}
    assert present_fields(wanted, in_org) == {"Amount__c", "Payout__r.Stripe_Payout_Id__c"}
