"""The emulator driven by simple-salesforce 1.12.x, unmodified: logins, single upsert, Collections, SOQL
paging, Bulk 2.0 (10,000 rows, twice), validation errors per record, limits, faults and persistence."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from emulators.salesforce_emulator import EmulatorHandle, client_session, start_emulator

COLL = "composite/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c"
PROBE = "SELECT Id FROM Account LIMIT 1"


def _rec(charge: str, **fields: object) -> dict[str, object]:
    return {"attributes": {"type": "Stripe_Payment__c"}, "Stripe_Charge_Id__c": charge, **fields}


def test_every_login_flow_and_bad_credentials(emulator: EmulatorHandle) -> None:
    c, s = emulator.credentials, client_session(emulator)
    flows = [
        dict(username=c["username"], password=c["password"], security_token=c["security_token"]),
        dict(username=c["username"], password=c["password"], consumer_key=c["client_id"],
             consumer_secret=c["client_secret"]),
        dict(consumer_key=c["client_id"], consumer_secret=c["client_secret"], domain="paysync-emulator.my"),
        dict(username=c["username"], consumer_key=c["client_id"], privatekey_file=c["jwt_private_key_file"]),
    ]
    for kwargs in flows:
        sf = Salesforce(session=s, **kwargs)  # type: ignore[arg-type]
        assert sf.sf_instance == emulator.instance
        sf.query("SELECT Id FROM Account LIMIT 1")
        assert sf.api_usage["api-usage"].total > 0  # from Sforce-Limit-Info
    with pytest.raises(SalesforceAuthenticationFailed) as soap:
        Salesforce(username=c["username"], password="wrong", security_token="x", session=s)
    assert soap.value.code == "INVALID_LOGIN"
    with pytest.raises(SalesforceAuthenticationFailed) as oauth:
        Salesforce(username=c["username"], password="wrong", consumer_key=c["client_id"],
                   consumer_secret=c["client_secret"], session=s)
    assert oauth.value.code == "invalid_grant"
    with pytest.raises(SalesforceAuthenticationFailed) as client:
        Salesforce(consumer_key="nobody", consumer_secret="x", domain="paysync-emulator.my", session=s)
    assert client.value.code == "invalid_client_id"


def test_single_upsert_creates_then_updates_and_keeps_decimals_exact(sf: Salesforce) -> None:
    assert sf.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/po_single", {"Amount__c": "10.50", "Currency__c": "USD",
                                                                         "Status__c": "Paid"}) == 201
    assert sf.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/po_single", {"Amount__c": "1000.005",
                                                                         "Automatic__c": "true"}) == 200
    raw = sf.session.get(f"{sf.base_url}query", params={"q": "SELECT Amount__c, Automatic__c, Status__c FROM "
                         "Stripe_Payout__c WHERE Stripe_Payout_Id__c = 'po_single'"}, headers=sf.headers)
    assert '"Amount__c": 1000.005' in raw.text
    rec = raw.json(parse_float=Decimal)["records"][0]
    assert (rec["Amount__c"], rec["Automatic__c"], rec["Status__c"]) == (Decimal("1000.005"), True, "Paid")
    # external ids are case-sensitive: a different case is a different record
    assert sf.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/PO_SINGLE", {"Amount__c": 1}) == 201


def test_collections_upsert_reports_each_validation_error_and_lands_the_rest(sf: Salesforce) -> None:
    sf.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/po_coll", {"Status__c": "Pending"})
    records = [
        _rec("ch_ok", Amount__c="12.34", Payout__r={"Stripe_Payout_Id__c": "po_coll"},
             Paid_At__c="2026-01-02T03:04:05.000+0000", Livemode__c="false"),
        _rec("ch_unknown", Bogus__c="x"),
        _rec("ch_long", Card_Last4__c="12345"),
        _rec("ch_pick", Status__c="Almost"),
        _rec("ch_parent", Payout__r={"Stripe_Payout_Id__c": "po_missing"}),
        _rec("ch_ok2", Amount__c=7, Status__c="Succeeded"),
    ]
    result = sf.restful(COLL, method="PATCH", json={"allOrNone": False, "records": records})
    codes = [r["errors"][0]["statusCode"] if r["errors"] else "OK" for r in result]
    assert codes == ["OK", "INVALID_FIELD", "STRING_TOO_LONG", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                     "INVALID_FIELD", "OK"]
    assert "Foreign key external ID: po_missing not found" in result[4]["errors"][0]["message"]
    assert result[2]["errors"][0]["fields"] == ["Card_Last4__c"]
    landed = sf.query("SELECT Stripe_Charge_Id__c, Payout__r.Stripe_Payout_Id__c FROM Stripe_Payment__c "
                      "WHERE Stripe_Charge_Id__c IN ('ch_ok', 'ch_ok2', 'ch_long') ORDER BY Stripe_Charge_Id__c")
    assert [r["Stripe_Charge_Id__c"] for r in landed["records"]] == ["ch_ok", "ch_ok2"]
    assert landed["records"][0]["Payout__r"]["Stripe_Payout_Id__c"] == "po_coll"
    assert landed["records"][1]["Payout__r"] is None
    # allOrNone: one failure rolls the batch back
    result = sf.restful(COLL, method="PATCH", json={"allOrNone": True, "records": [_rec("ch_aon"),
                                                                                   _rec("ch_bad", Status__c="?")]})
    assert result[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.query("SELECT COUNT() FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_aon'")["totalSize"] == 0


def test_collections_create_required_fields_duplicates_and_update_by_id(sf: Salesforce) -> None:
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Name": "Acme", "Stripe_Customer_Id__c": "cus_create"},
        {"attributes": {"type": "Account"}, "Stripe_Customer_Id__c": "cus_noname"},
        {"attributes": {"type": "Account"}, "Name": "Again", "Stripe_Customer_Id__c": "cus_create"},
        {"attributes": {"type": "Opportunity"}, "Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-03-01"},
    ]})
    assert created[0]["success"] and created[0]["id"].startswith("001") and len(created[0]["id"]) == 18
    assert created[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert created[1]["errors"][0]["fields"] == ["Name"]
    assert created[2]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    opp_id = created[3]["id"]
    assert opp_id.startswith("006")
    # "Upsert Records Using sObject Collections": "Only external ids are supported. Don't use record ids."
    with pytest.raises(SalesforceMalformedRequest) as by_id:
        sf.restful("composite/sobjects/Opportunity/Id", method="PATCH", json={"records": [
            {"attributes": {"type": "Opportunity"}, "Id": opp_id, "Stripe_Payment_Status__c": "Refunded"}]})
    assert by_id.value.status == 400 and by_id.value.content[0]["errorCode"] == "INVALID_FIELD"
    # "Update Records Using sObject Collections": PATCH /composite/sobjects, each record with its Id → SaveResults
    result = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": opp_id, "Stripe_Payment_Status__c": "Refunded"},
        {"attributes": {"type": "Opportunity"}, "Id": "0065g000000zzzzAAA", "Stripe_Payment_Status__c": "Paid"},
    ]})
    assert result[0] == {"id": opp_id, "success": True, "errors": []}
    assert result[1]["success"] is False and result[1]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert sf.Opportunity.get(opp_id)["Stripe_Payment_Status__c"] == "Refunded"
    assert sf.Opportunity.update(opp_id, {"Stripe_Payment_Status__c": "Succeeded"}) == 204  # single PATCH by id
    assert sf.Opportunity.get(opp_id)["Stripe_Payment_Status__c"] == "Succeeded"
    rolled = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": opp_id, "Stripe_Payment_Status__c": "Refunded"},
        {"attributes": {"type": "Opportunity"}, "Id": "0065g000000zzzzAAA", "Stripe_Payment_Status__c": "Paid"},
    ]})
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert sf.Opportunity.get(opp_id)["Stripe_Payment_Status__c"] == "Succeeded"


def test_bulk2_upsert_of_10000_rows_twice_keeps_the_count(sf: Salesforce) -> None:
    sf.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/po_bulk", {"Status__c": "Paid"})
    rows = [{"Stripe_Charge_Id__c": f"ch_bulk_{i:05d}", "Amount__c": f"{i}.25", "Currency__c": "JPY",
             "Payout__r.Stripe_Payout_Id__c": "po_bulk"} for i in range(10_000)]
    for attempt in range(2):
        result = sf.bulk2.Stripe_Payment__c.upsert(records=rows, external_id_field="Stripe_Charge_Id__c", wait=0.2)
        assert sum(r["numberRecordsProcessed"] for r in result) == 10_000
        assert sum(r["numberRecordsFailed"] for r in result) == 0
        count = sf.query("SELECT COUNT() FROM Stripe_Payment__c WHERE Payout__r.Stripe_Payout_Id__c = 'po_bulk'")
        assert count["totalSize"] == 10_000, attempt
    everything = sf.query_all("SELECT Id, Amount__c FROM Stripe_Payment__c WHERE Currency__c = 'JPY' "
                              "ORDER BY Stripe_Charge_Id__c DESC")
    assert everything["totalSize"] == len(everything["records"]) == 10_000
    assert everything["records"][0]["Amount__c"] == 9999.25


def test_bulk2_per_record_errors_and_unknown_column(sf: Salesforce, tmp_path: Path) -> None:
    csv_text = ("Stripe_Charge_Id__c,Status__c,Payout__r.Stripe_Payout_Id__c,Description__c\n"
                "ch_b_ok,Succeeded,,fine\n"
                "ch_b_pick,Maybe,,\n"
                "ch_b_parent,,po_nope,\n")
    csv_file = tmp_path / "payments.csv"
    csv_file.write_text(csv_text)
    [info] = sf.bulk2.Stripe_Payment__c.upsert(csv_file=str(csv_file), external_id_field="Stripe_Charge_Id__c",
                                               wait=0.1)
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (3, 2)
    job = {"id": info["job_id"]}
    failed = sf.bulk2.Stripe_Payment__c.get_failed_records(job["id"])
    assert failed.splitlines()[0].startswith("sf__Id,sf__Error,Stripe_Charge_Id__c")
    assert ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Status: bad value for restricted picklist field: Maybe:"
            "Status__c --") in failed
    assert "INVALID_FIELD:Foreign key external ID: po_nope not found for field Stripe_Payout_Id__c" in failed
    assert "ch_b_ok" in sf.bulk2.Stripe_Payment__c.get_successful_records(job["id"])
    # empty = unchanged, #N/A = null
    sf.bulk2.Stripe_Payment__c.upsert(records=[{"Stripe_Charge_Id__c": "ch_b_ok", "Description__c": "#N/A",
                                                "Status__c": ""}], external_id_field="Stripe_Charge_Id__c", wait=0.1)
    rec = sf.Stripe_Payment__c.get_by_custom_id("Stripe_Charge_Id__c", "ch_b_ok")
    assert (rec["Status__c"], rec["Description__c"]) == ("Succeeded", None)
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found : Nope__c"):
        sf.bulk2.Stripe_Payment__c.upsert(records=[{"Stripe_Charge_Id__c": "ch_x", "Nope__c": "1"}],
                                          external_id_field="Stripe_Charge_Id__c", wait=0.1)


def test_session_expiry_daily_limit_and_faults(emulator: EmulatorHandle, sf: Salesforce) -> None:
    try:
        emulator.set_faults(session_ttl_s=0.2)
        stale = Salesforce(instance_url=emulator.instance_url, session_id=sf.session_id,
                           session=client_session(emulator))
        deadline = time.monotonic() + 10
        while True:  # poll until the token is past its TTL
            try:
                stale.query(PROBE)
            except SalesforceExpiredSession as exc:
                assert exc.content[0]["errorCode"] == "INVALID_SESSION_ID"
                break
            assert time.monotonic() < deadline
        emulator.set_faults(session_ttl_s=7200)
        fresh = Salesforce(username=emulator.credentials["username"], password=emulator.credentials["password"],
                           security_token=emulator.credentials["security_token"], session=client_session(emulator))
        used = emulator.stats()["api_used"]
        emulator.set_faults(daily_limit=used + 2)
        fresh.query(PROBE)
        fresh.query(PROBE)
        with pytest.raises(SalesforceRefusedRequest) as refused:
            fresh.query(PROBE)
        assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        emulator.admin("POST", "/_emulator/limits/reset")
        assert fresh.api_usage["api-usage"].used == used + 2
        fresh.query(PROBE)
        assert fresh.api_usage["api-usage"].used == 1
        emulator.set_faults(daily_limit=100_000, lock_rate=1.0)
        fresh.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/po_lock", {"Status__c": "Paid"})  # create: no lock
        result = fresh.restful("composite/sobjects/Stripe_Payout__c/Stripe_Payout_Id__c", method="PATCH",
                               json={"records": [{"attributes": {"type": "Stripe_Payout__c"},
                                                  "Stripe_Payout_Id__c": "po_lock", "Status__c": "Failed"}]})
        assert result[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
        emulator.set_faults(lock_rate=0.0, error_503_rate=1.0)
        resp = fresh.session.get(f"{fresh.base_url}limits", headers=fresh.headers)
        assert resp.status_code == 503
        stats = emulator.stats()
        assert stats["calls"]["auth"] >= 1 and stats["calls"]["collections"] >= 1 and stats["calls"]["query"] >= 3
    finally:
        emulator.set_faults(session_ttl_s=7200, daily_limit=100_000, lock_rate=0.0, error_503_rate=0.0)


def test_records_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "org.sqlite3"
    for attempt in range(2):
        handle = start_emulator(db)
        try:
            c = handle.credentials
            sf = Salesforce(username=c["username"], password=c["password"], security_token=c["security_token"],
                            session=client_session(handle))
            if attempt == 0:
                sf.Account.upsert("Stripe_Customer_Id__c/cus_keep", {"Name": "Keep", "Livemode__c": True})
            else:
                rec = sf.Account.get_by_custom_id("Stripe_Customer_Id__c", "cus_keep")
                assert (rec["Name"], rec["Livemode__c"], rec["Id"][:3]) == ("Keep", True, "001")
        finally:
            handle.stop()
