"""`org_mode="admins"`: the org as its admins leave it — a validation rule, a required field added by an admin,
a private sharing model hiding other owners' records, and Orders disabled (the optional package not deployed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from emulators.salesforce_emulator import EmulatorHandle, start_emulator
from tests.salesforce_emulator.conftest import password_client


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    handle = start_emulator(tmp_path_factory.mktemp("admins") / "org.sqlite3", org_mode="admins", seed=3)
    yield handle
    handle.stop()


@pytest.fixture()
def sf(org: EmulatorHandle) -> Salesforce:
    return password_client(org)


def _save(sf: Salesforce, path: str, sobject: str, records: list[dict[str, Any]],
          method: str = "PATCH") -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = sf.restful(path, method=method, json={"allOrNone": False, "records": [
        {"attributes": {"type": sobject}, **r} for r in records]})
    return result


def _codes(results: list[dict[str, Any]]) -> list[str]:
    return [r["errors"][0]["statusCode"] if r["errors"] else "ok" for r in results]


def test_the_mode_is_reported(org: EmulatorHandle) -> None:
    assert org.org_mode == "admins" and org.stats()["org_mode"] == "admins"


def test_orders_disabled_no_order_object_and_no_order_lookup(sf: Salesforce) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Order.describe()
    created = _save(sf, "composite/sobjects", "Order", [{"Status": "Draft", "EffectiveDate": "2026-01-01"}], "POST")
    assert _codes(created) == ["INVALID_TYPE"]
    with pytest.raises(SalesforceMalformedRequest) as soql:
        sf.query("SELECT Id FROM Order")
    assert soql.value.content[0]["errorCode"] == "INVALID_TYPE"
    linked = _save(sf, "composite/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c", "Stripe_Payment__c",
                   [{"Stripe_Charge_Id__c": "ch_adm_order", "Order__c": "8015g0000000001AAA"}])
    assert _codes(linked) == ["INVALID_FIELD"]


def test_validation_rule_rejects_large_payments_without_description(sf: Salesforce) -> None:
    results = _save(sf, "composite/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c", "Stripe_Payment__c", [
        {"Stripe_Charge_Id__c": "ch_adm_big", "Amount__c": "450.01", "Currency__c": "USD"},
        {"Stripe_Charge_Id__c": "ch_adm_big_desc", "Amount__c": "499", "Description__c": "Annual plan"},
        {"Stripe_Charge_Id__c": "ch_adm_small", "Amount__c": "450.00"},
    ])
    assert _codes(results) == ["FIELD_CUSTOM_VALIDATION_EXCEPTION", "ok", "ok"]
    assert results[0]["errors"][0] == {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Description__c"],
                                       "message": "Payments over 450 need a description for Finance."}


def test_required_field_added_by_an_admin(sf: Salesforce) -> None:
    results = _save(sf, "composite/sobjects/Stripe_Refund__c/Stripe_Refund_Id__c", "Stripe_Refund__c", [
        {"Stripe_Refund_Id__c": "re_adm_noreason"},
        {"Stripe_Refund_Id__c": "re_adm_reason", "Reason__c": "requested_by_customer"},
    ])
    assert _codes(results) == ["REQUIRED_FIELD_MISSING", "ok"]
    assert results[0]["errors"][0]["fields"] == ["Reason__c"]


def test_private_sharing_hides_other_owners_opportunities(org: EmulatorHandle, sf: Salesforce) -> None:
    hidden = org.stats()["hidden_ids"]
    assert len(hidden) == 3
    seeded = org.admin("POST", "/_emulator/seed", {"sobject": "Opportunity", "owner": "other", "record": {
        "Name": "Seeded elsewhere", "StageName": "Prospecting", "CloseDate": "2026-09-01"}})["id"]
    assert seeded in org.stats()["hidden_ids"]
    mine = sf.Opportunity.create({"Name": "Mine", "StageName": "Prospecting", "CloseDate": "2026-09-01"})["id"]
    visible = {r["Id"] for r in sf.query_all("SELECT Id FROM Opportunity")["records"]}
    assert mine in visible and not visible & {*hidden, seeded}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get(seeded)
    updated = _save(sf, "composite/sobjects", "Opportunity", [
        {"Id": mine, "Stripe_Payment_Status__c": "Succeeded"}, {"Id": seeded, "Stripe_Payment_Status__c": "Succeeded"}])
    assert _codes(updated) == ["ok", "INSUFFICIENT_ACCESS_OR_READONLY"]
    linked = _save(sf, "composite/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c", "Stripe_Payment__c", [
        {"Stripe_Charge_Id__c": "ch_adm_mine", "Opportunity__c": mine},
        {"Stripe_Charge_Id__c": "ch_adm_theirs", "Opportunity__c": hidden[0]}])
    assert _codes(linked) == ["ok", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"]
