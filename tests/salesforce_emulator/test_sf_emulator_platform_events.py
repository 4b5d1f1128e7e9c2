"""Platform events on the emulator (issue 17): publishing is an insert of the `__e` object through REST,
Collections or Composite, answered as Salesforce does (201, `success`, OPERATION_ENQUEUED + the event UUID);
events are published only with their transaction, cannot be updated, upserted or queried, and the emulator's
admin endpoint shows what was published."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from emulators.salesforce_emulator import EmulatorHandle

V = "/services/data/v59.0"
EVENT = "Stripe_Payment_Event__e"


def events(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return list(emulator.admin("GET", "/_emulator/events")["events"])


@pytest.fixture(autouse=True)
def _clear(emulator: EmulatorHandle) -> None:
    emulator.admin("POST", "/_emulator/events/clear")


def test_rest_insert_publishes_one_message_with_operation_enqueued(emulator: EmulatorHandle, sf: Salesforce) -> None:
    answer = sf.restful(f"sobjects/{EVENT}/", method="POST", json={
        "Object__c": "Stripe_Payment__c", "Stripe_Id__c": "ch_1", "Old_Status__c": "Pending",
        "New_Status__c": "Succeeded", "Amount__c": "12.50", "Currency__c": "USD"})
    assert answer["success"] is True and answer["id"].startswith("e00") and "created" not in answer
    [enqueued] = answer["errors"]
    assert enqueued["statusCode"] == "OPERATION_ENQUEUED" and len(enqueued["message"]) == 36
    [published] = events(emulator)
    assert published["sobject"] == EVENT and published["New_Status__c"] == "Succeeded"
    assert published["EventUuid"] == enqueued["message"] and published["ReplayId"] == "1"


def test_collections_and_composite_inserts_publish_and_field_attributes_are_enforced(
        emulator: EmulatorHandle, sf: Salesforce) -> None:
    records = [{"attributes": {"type": EVENT}, "Stripe_Id__c": "re_1", "New_Status__c": "Succeeded"},
               {"attributes": {"type": EVENT}, "Stripe_Id__c": "re_2", "Currency__c": "TOO_LONG"}]
    answer = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [a["success"] for a in answer] == [True, False]
    assert answer[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    sub = {"method": "POST", "url": f"{V}/sobjects/{EVENT}", "referenceId": "ev",
           "body": {"Stripe_Id__c": "dp_1", "New_Status__c": "Needs Response"}}
    [res] = sf.restful("composite", method="POST", json={"compositeRequest": [sub]})["compositeResponse"]
    assert res["httpStatusCode"] == 201 and res["body"]["errors"][0]["statusCode"] == "OPERATION_ENQUEUED"
    assert [e["Stripe_Id__c"] for e in events(emulator)] == ["re_1", "dp_1"]


def test_all_or_none_rollback_publishes_nothing(emulator: EmulatorHandle, sf: Salesforce) -> None:
    """PublishAfterCommit: a rolled-back transaction publishes no message."""
    records = [{"attributes": {"type": EVENT}, "Stripe_Id__c": "ch_ok"},
               {"attributes": {"type": EVENT}, "No_Such__c": "x"}]
    answer = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert [a["success"] for a in answer] == [False, False]
    assert events(emulator) == []


def test_events_cannot_be_upserted_or_queried(emulator: EmulatorHandle, sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(f"SELECT Id FROM {EVENT}")
    assert "INVALID_TYPE" in str(exc.value)
    answer = sf.restful(f"composite/sobjects/{EVENT}/Stripe_Id__c", method="PATCH", json={
        "allOrNone": False, "records": [{"attributes": {"type": EVENT}, "Stripe_Id__c": "ch_9"}]})
    assert answer[0]["success"] is False and answer[0]["errors"][0]["statusCode"] == "INVALID_OPERATION"
    describe = sf.restful(f"sobjects/{EVENT}/describe")
    assert describe["queryable"] is False and describe["createable"] is True
    assert events(emulator) == []


def test_field_history_records_tracked_status_changes_only(emulator: EmulatorHandle, sf: Salesforce) -> None:
    """`enableHistory` on the object and `trackHistory` on Status__c (the package): a status change is one entry
    with old and new value; an untracked field (Fee__c) is none."""
    sf.restful("sobjects/Stripe_Refund__c/Stripe_Refund_Id__c/re_h1", method="PATCH", json={"Status__c": "Pending"})
    sf.restful("sobjects/Stripe_Refund__c/Stripe_Refund_Id__c/re_h1", method="PATCH",
               json={"Status__c": "Succeeded", "Fee__c": "0.100"})
    rid = sf.query("SELECT Id FROM Stripe_Refund__c WHERE Stripe_Refund_Id__c = 're_h1'")["records"][0]["Id"]
    entries = [h for h in emulator.admin("GET", "/_emulator/history")["history"] if h["ParentId"] == rid]
    assert [(h["sobject"], h["Field"], h["OldValue"], h["NewValue"]) for h in entries] == [
        ("Stripe_Refund__History", "created", None, None),
        ("Stripe_Refund__History", "Status__c", "Pending", "Succeeded")]
