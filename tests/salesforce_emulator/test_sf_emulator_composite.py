"""`POST /composite` on the emulator, driven by simple-salesforce 1.12.x unmodified: several objects in one API
call, subrequests in order, per-subrequest errors, references, and Salesforce's subrequest limits."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulators.salesforce_emulator import EmulatorHandle

V = "/services/data/v59.0"


def collection(ref: str, sobject: str, ext: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"method": "PATCH", "url": f"{V}/composite/sobjects/{sobject}/{ext}", "referenceId": ref,
            "body": {"allOrNone": False, "records": [{"attributes": {"type": sobject}, **r} for r in records]}}


def composite(sf: Salesforce, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """In request order: these tests rely on parents first, so they turn collation off (it is on by default)."""
    return sf.restful("composite", method="POST", json={"allOrNone": False, "collateSubrequests": False,
                                                        "compositeRequest": subs})["compositeResponse"]


def test_parents_and_children_of_several_objects_in_one_call(emulator: EmulatorHandle, sf: Salesforce) -> None:
    used = emulator.stats()["api_used"]
    answers = composite(sf, [
        collection("accounts", "Account", "Stripe_Customer_Id__c",
                   [{"Stripe_Customer_Id__c": "cus_c1", "Name": "Ada"}, {"Stripe_Customer_Id__c": "cus_c2", "Name": "Bo"}]),
        {"method": "PATCH", "url": f"{V}/sobjects/Stripe_Payout__c/Stripe_Payout_Id__c/po_c1", "referenceId": "payout",
         "body": {"Status__c": "Paid", "Amount__c": "10.005", "Currency__c": "KWD"}},
        collection("payments", "Stripe_Payment__c", "Stripe_Charge_Id__c", [
            {"Stripe_Charge_Id__c": "ch_c1", "Account__r": {"Stripe_Customer_Id__c": "cus_c1"},
             "Payout__r": {"Stripe_Payout_Id__c": "po_c1"}},
            {"Stripe_Charge_Id__c": "ch_c2", "Status__c": "Almost"},
        ]),
        {"method": "PATCH", "url": f"{V}/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c/ch_c3", "referenceId": "bad",
         "body": {"Account__r": {"Stripe_Customer_Id__c": "cus_nowhere"}}},
    ])
    assert emulator.stats()["api_used"] == used + 1  # four subrequests, one API call
    assert [a["referenceId"] for a in answers] == ["accounts", "payout", "payments", "bad"]
    assert [a["httpStatusCode"] for a in answers] == [200, 201, 200, 400]
    assert [r["created"] for r in answers[0]["body"]] == [True, True]
    assert answers[1]["body"]["success"] is True and answers[1]["body"]["created"] is True
    assert answers[2]["body"][0]["success"] is True
    assert answers[2]["body"][1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert answers[3]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert "cus_nowhere" in answers[3]["body"][0]["message"]
    rows = sf.query("SELECT Stripe_Charge_Id__c, Account__r.Name, Payout__r.Amount__c FROM Stripe_Payment__c "
                    "WHERE Stripe_Charge_Id__c LIKE 'ch_c%'")["records"]
    assert [(r["Stripe_Charge_Id__c"], r["Account__r"]["Name"]) for r in rows] == [("ch_c1", "Ada")]
    assert str(rows[0]["Payout__r"]["Amount__c"]) == "10.005"


def test_references_to_earlier_results_and_halted_dependents(sf: Salesforce) -> None:
    answers = composite(sf, [
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acc", "body": {"Name": "Ref Ltd"}},
        {"method": "GET", "url": f"{V}/sobjects/Account/@{{acc.id}}", "referenceId": "read"},
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "broken", "body": {"Nope__c": 1}},
        {"method": "GET", "url": f"{V}/sobjects/Account/@{{broken.id}}", "referenceId": "dependent"},
    ])
    assert answers[0]["httpStatusCode"] == 201
    assert answers[1]["httpStatusCode"] == 200 and answers[1]["body"]["Name"] == "Ref Ltd"
    assert answers[2]["httpStatusCode"] == 400
    assert answers[3]["httpStatusCode"] == 400 and answers[3]["body"][0]["errorCode"] == "PROCESSING_HALTED"


@pytest.mark.parametrize("subs, message", [
    ([collection(f"c{i}", "Account", "Stripe_Customer_Id__c", []) for i in range(6)], "at most 5"),
    ([{"method": "GET", "url": f"{V}/sobjects/Account", "referenceId": f"g{i}"} for i in range(26)], "at most 25"),
    ([{"method": "GET", "url": f"{V}/limits", "referenceId": "x"}], "not supported"),
    ([{"method": "GET", "url": f"{V}//", "referenceId": "x"}], "not supported"),
    ([{"method": "GET", "url": "/limits", "referenceId": "x"}], "/services/data/"),
    ([{"method": "GET", "url": f"{V}/sobjects", "referenceId": "same"}] * 2, "Duplicate referenceId"),
])
def test_salesforce_limits_on_subrequests(sf: Salesforce, subs: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as err:
        composite(sf, subs)
    assert message in str(err.value.content)


def _payout_upserts(version: str, prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"method": "PATCH", "url": f"/services/data/v{version}/sobjects/Stripe_Payout__c/Stripe_Payout_Id__c/"
             f"{prefix}{i}", "referenceId": f"p{i}", "body": {"Status__c": "Paid"}} for i in range(n)]


def _run(sf: Salesforce, version: str, subs: list[dict[str, Any]], collate: bool | None) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"compositeRequest": subs}
    if collate is not None:
        body["collateSubrequests"] = collate
    resp = sf.session.post(f"{sf.base_url.split('/services/')[0]}/services/data/v{version}/composite", json=body,
                           headers=sf.headers)
    assert resp.status_code == 200, resp.text
    answers: list[dict[str, Any]] = resp.json()["compositeResponse"]
    return answers


def _execution_order(answers: list[dict[str, Any]]) -> list[str]:
    """Records get ascending ids in the order they are inserted, so sorting by id gives the execution order."""
    return [a["referenceId"] for a in sorted(answers, key=lambda a: a["body"]["id"])]


def test_collated_by_default_from_49_so_unrelated_subrequests_run_shuffled(sf: Salesforce) -> None:
    answers = _run(sf, "59.0", _payout_upserts("59.0", "po_col_", 10), collate=None)
    assert [a["referenceId"] for a in answers] == [f"p{i}" for i in range(10)]  # answers in request order
    assert all(a["httpStatusCode"] == 201 for a in answers)
    assert _execution_order(answers) != [f"p{i}" for i in range(10)]


def test_not_collated_runs_in_request_order_and_48_defaults_to_false(sf: Salesforce) -> None:
    in_order = [f"p{i}" for i in range(10)]
    assert _execution_order(_run(sf, "59.0", _payout_upserts("59.0", "po_seq_", 10), collate=False)) == in_order
    assert _execution_order(_run(sf, "48.0", _payout_upserts("48.0", "po_v48_", 10), collate=None)) == in_order


def test_collated_subrequests_still_follow_their_references(sf: Salesforce) -> None:
    for attempt in range(8):  # several shuffles: the dependent one always runs after its parent
        subs = _payout_upserts("59.0", f"po_dep{attempt}_", 6)
        subs.append({"method": "PATCH", "url": f"{V}/sobjects/Stripe_Payout__c/@{{p0.id}}", "referenceId": "child",
                     "body": {"Status__c": "Failed"}})
        answers = _run(sf, "59.0", subs, collate=True)
        assert answers[-1]["httpStatusCode"] == 204, (attempt, answers[-1])


def test_a_subrequest_with_http_headers_is_not_collated(sf: Salesforce) -> None:
    subs = _payout_upserts("59.0", "po_hdr_", 9)
    subs[4]["httpHeaders"] = {"Sforce-Auto-Assign": "FALSE"}
    order = _execution_order(_run(sf, "59.0", subs, collate=True))
    assert order.index("p4") == 4 and set(order[:4]) == {"p0", "p1", "p2", "p3"}
