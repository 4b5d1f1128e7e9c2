"""Writes as Salesforce does them under contention and with raw-id lookups: no global lock around an upsert (two
writers of one new external id → one `DUPLICATE_VALUE`), lock errors on child inserts (optionally wrapped in
`CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY`), and lookups by record id checked for object, existence and visibility."""

from __future__ import annotations

import threading
import time
from typing import Any

from simple_salesforce import Salesforce

from emulators.salesforce_emulator import EmulatorHandle, client_session

PAYMENTS = "composite/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c"
REFUNDS = "composite/sobjects/Stripe_Refund__c/Stripe_Refund_Id__c"


def _upsert(sf: Salesforce, path: str, sobject: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = sf.restful(path, method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": sobject}, **r} for r in records]})
    return result


def _second_writer(handle: EmulatorHandle) -> Salesforce:
    """Another client with its own HTTP session (a `requests.Session` is not shared between threads)."""
    c = handle.credentials
    return Salesforce(username=c["username"], password=c["password"], consumer_key=c["client_id"],
                      consumer_secret=c["client_secret"], session=client_session(handle))


def _wait_for(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_concurrent_inserts_of_one_new_external_id_give_one_duplicate_value(
        emulator: EmulatorHandle, sf: Salesforce) -> None:
    emulator.admin("POST", "/_emulator/gate", {"value": "ch_race"})
    first: list[list[dict[str, Any]]] = []
    other = _second_writer(emulator)
    writer = threading.Thread(target=lambda: first.append(
        _upsert(other, PAYMENTS, "Stripe_Payment__c", [{"Stripe_Charge_Id__c": "ch_race", "Status__c": "Pending"}])))
    writer.start()
    _wait_for(lambda: emulator.stats()["gate"]["waiting"] == 1, "the first insert to be held after its check")
    second = _upsert(sf, PAYMENTS, "Stripe_Payment__c", [{"Stripe_Charge_Id__c": "ch_race", "Status__c": "Pending"}])
    assert second[0]["success"] and second[0]["created"] is True
    emulator.admin("POST", "/_emulator/gate/release")
    writer.join(timeout=30)
    error = first[0][0]["errors"][0]
    assert first[0][0]["success"] is False and error["statusCode"] == "DUPLICATE_VALUE"
    assert error["message"] == ("duplicate value found: Stripe_Charge_Id__c duplicates value on record with id: "
                                f"{second[0]['id']}")
    count = sf.query("SELECT COUNT() FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = 'ch_race'")
    assert count["totalSize"] == 1


def test_lock_errors_hit_child_inserts_and_can_arrive_wrapped(emulator: EmulatorHandle, sf: Salesforce) -> None:
    parent = _upsert(sf, PAYMENTS, "Stripe_Payment__c", [{"Stripe_Charge_Id__c": "ch_lock_parent"}])[0]["id"]
    child = {"Stripe_Refund_Id__c": "re_lock", "Payment__r": {"Stripe_Charge_Id__c": "ch_lock_parent"}}
    try:
        emulator.set_faults(lock_rate=1.0)
        orphan = _upsert(sf, REFUNDS, "Stripe_Refund__c", [{"Stripe_Refund_Id__c": "re_orphan"}])
        assert orphan[0]["success"]  # an insert with no parent locks nothing
        locked = _upsert(sf, REFUNDS, "Stripe_Refund__c", [child])[0]["errors"][0]
        assert locked["statusCode"] == "UNABLE_TO_LOCK_ROW" and parent in locked["message"]
        emulator.set_faults(lock_wrap_rate=1.0)
        wrapped = _upsert(sf, REFUNDS, "Stripe_Refund__c", [child])[0]["errors"][0]
        assert wrapped["statusCode"] == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
        assert "UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record" in wrapped["message"]
    finally:
        emulator.set_faults(lock_rate=0.0, lock_wrap_rate=0.0)
    assert _upsert(sf, REFUNDS, "Stripe_Refund__c", [child])[0]["success"]


def test_lookups_by_raw_id_must_name_an_existing_record_of_the_right_object(sf: Salesforce) -> None:
    opp = sf.Opportunity.create({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-05-01"})["id"]
    gone = sf.Opportunity.create({"Name": "Gone", "StageName": "Prospecting", "CloseDate": "2026-05-01"})["id"]
    sf.Opportunity.delete(gone)
    account = sf.Account.create({"Name": "Not an opportunity"})["id"]
    cases = {"ch_raw_ok": opp, "ch_raw_15": opp[:15], "ch_raw_type": account, "ch_raw_gone": gone,
             "ch_raw_never": "0065g00000NEVERAAA", "ch_raw_bad": "not-an-id"}
    results = _upsert(sf, PAYMENTS, "Stripe_Payment__c", [
        {"Stripe_Charge_Id__c": charge, "Opportunity__c": value, "Status__c": "Succeeded"}
        for charge, value in cases.items()])
    codes = [r["errors"][0]["statusCode"] if r["errors"] else "ok" for r in results]
    assert codes == ["ok", "ok", "FIELD_INTEGRITY_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY",
                     "INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"]
    assert all(r["errors"][0]["fields"] == ["Opportunity__c"] for r in results[2:])
    stored = sf.query("SELECT Stripe_Charge_Id__c, Opportunity__c FROM Stripe_Payment__c "
                      "WHERE Stripe_Charge_Id__c LIKE 'ch_raw_%' ORDER BY Stripe_Charge_Id__c")["records"]
    assert [(r["Stripe_Charge_Id__c"], r["Opportunity__c"]) for r in stored] == [
        ("ch_raw_15", opp), ("ch_raw_ok", opp)]  # the refused records failed whole: nothing written


def test_latency_model_charges_per_call_and_per_record(emulator: EmulatorHandle, sf: Salesforce) -> None:
    records = [{"Stripe_Charge_Id__c": f"ch_lat_{i}"} for i in range(20)]
    try:
        emulator.set_faults(latency_ms=100, latency_per_record_ms=20)
        started = time.monotonic()
        assert all(r["success"] for r in _upsert(sf, PAYMENTS, "Stripe_Payment__c", records))
        assert time.monotonic() - started >= 0.1 + 20 * 0.02
    finally:
        emulator.set_faults(latency_ms=0, latency_per_record_ms=0)


def test_insert_window_lets_concurrent_writers_race_without_a_gate(emulator: EmulatorHandle, sf: Salesforce) -> None:
    """With `insert_window_ms`, the second writer checks while the first is still inside its window, so exactly one
    of them wins, whichever the scheduler lets write first."""
    results: list[list[dict[str, Any]]] = []
    record = [{"Stripe_Charge_Id__c": "ch_window", "Status__c": "Pending"}]
    try:
        emulator.set_faults(insert_window_ms=5000)
        other = _second_writer(emulator)
        first = threading.Thread(target=lambda: results.append(_upsert(other, PAYMENTS, "Stripe_Payment__c",
                                                                       record)))
        first.start()
        _wait_for(lambda: emulator.stats()["gate"]["in_window"] == 1, "the first insert to enter its window")
        results.append(_upsert(sf, PAYMENTS, "Stripe_Payment__c", record))
        first.join(timeout=30)
    finally:
        emulator.set_faults(insert_window_ms=0)
    outcomes = sorted(r[0]["errors"][0]["statusCode"] if r[0]["errors"] else "created" for r in results)
    assert outcomes == ["DUPLICATE_VALUE", "created"]
