"""Every mapping against the real Stripe payloads of ../shared/fixtures/stripe (skips when absent)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mapping_helpers import Payload, object_type_of
from streams import statuses
from streams.mapping import SUPPORTED_OBJECT_TYPES, EventMeta, MappingConfig, MappingError, map_object

CFG = MappingConfig()
OPP = "0065g00000AbCdEAAV"   # 18-char Opportunity id
ORDER = "8015g00000XyZ12"    # 15-char Order id


def _one(payloads: list[Payload], file: str, object_type: str | None = None) -> Payload:
    found = [p for p in payloads if p.file == file and (object_type is None or object_type_of(p) == object_type)]
    assert found, file
    return found[0]


def _map(p: Payload, object_type: str, cfg: MappingConfig = CFG) -> list[dict[str, Any]]:
    return map_object(object_type, p.obj, p.meta(object_type), cfg)


def _by_sobject(upserts: list[dict[str, Any]], sobject: str) -> dict[str, Any]:
    found = [u for u in upserts if u["sobject"] == sobject]
    assert len(found) == 1, [u["sobject"] for u in upserts]
    return found[0]


def _no_float(value: Any) -> None:
    if isinstance(value, float):
        raise AssertionError(f"float in an upsert: {value!r}")
    if isinstance(value, dict):
        for v in value.values():
            _no_float(v)
    if isinstance(value, list):
        for v in value:
            _no_float(v)


# Old hand-written shapes that really are malformed (SOURCES.md): the mapping must reject them.
KNOWN_MALFORMED = {
    "stripe-ruby-mock/charge.dispute.closed.json": "MISSING_FIELD",   # no dispute id
    "stripe-ruby-mock/charge.dispute.updated.json": "MISSING_FIELD",  # no dispute id
    "stripe-ruby-mock/charge.updated.json": "MISSING_FIELD",          # no charge status
}


def test_every_supported_payload_maps_to_valid_upserts(payloads: list[Payload], check: Any) -> None:
    mapped = 0
    for p in payloads:
        object_type = object_type_of(p)
        if object_type not in SUPPORTED_OBJECT_TYPES:
            continue
        if p.file in KNOWN_MALFORMED:
            with pytest.raises(MappingError) as info:
                _map(p, object_type)
            assert info.value.code == KNOWN_MALFORMED[p.file]
            continue
        for cfg in (CFG, MappingConfig(customer_target="Contact", multi_currency=True,
                                       legal_entities={"platform": "Paysync Ltd"})):
            upserts = _map(p, object_type, cfg)
            check(upserts)
            _no_float(upserts)
            for u in upserts:
                assert u["version"] == p.meta(object_type).version
                assert u["source_event_id"] == p.event_id
        mapped += 1
    assert mapped >= 50


def test_full_refund_is_refunded(payloads: list[Payload]) -> None:
    rec = _by_sobject(_map(_one(payloads, "stripe-ruby-mock/charge.refunded.json"), "charge"), "Stripe_Payment__c")
    assert rec["fields"]["Status__c"] == "Refunded"
    assert rec["fields"]["Amount_Refunded__c"] == rec["fields"]["Amount__c"] == "1.00"
    assert rec["fields"]["Card_Brand__c"] == "visa" and rec["fields"]["Card_Last4__c"] == "4242"


def test_partial_refund_is_partially_refunded(payloads: list[Payload]) -> None:
    p = _one(payloads, "pay-rails/charge.refunded.json")
    rec = _by_sobject(_map(p, "charge"), "Stripe_Payment__c")
    assert rec["fields"]["Status__c"] == "Partially Refunded"
    assert (rec["fields"]["Amount__c"], rec["fields"]["Amount_Refunded__c"]) == ("15.00", "5.00")


def test_failed_charge_keeps_failure_and_no_paid_at(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/charge.failed.json")
    fields = _by_sobject(_map(p, "charge"), "Stripe_Payment__c")["fields"]
    assert fields["Status__c"] == "Failed"
    assert fields["Failure_Code__c"] == p.obj["failure_code"]
    assert fields["Failure_Message__c"] == p.obj["failure_message"][:255]
    assert fields["Paid_At__c"] is None


def test_card_data_beyond_brand_and_last4_never_leaves(payloads: list[Payload]) -> None:
    for p in payloads:
        if object_type_of(p) != "charge" or p.file in KNOWN_MALFORMED:
            continue
        text = json.dumps(_map(p, "charge"))
        card = (p.obj.get("payment_method_details") or {}).get("card") or {}
        for secret in ("fingerprint", "exp_month", "exp_year"):
            assert secret not in text
        if len(card.get("fingerprint") or "") >= 8:
            assert card["fingerprint"] not in text


def test_uncaptured_charge_is_pending_then_succeeded(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    obj = copy.deepcopy(p.obj)
    obj.update(captured=False, amount_captured=0)
    assert statuses.charge_payment_status(obj) == "Pending"
    obj.update(captured=True, amount_captured=obj["amount"])
    assert statuses.charge_payment_status(obj) == "Succeeded"
    obj["disputed"] = True
    assert statuses.charge_payment_status(obj) == "Disputed"


def test_jpy_charge_is_zero_decimal(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    obj = copy.deepcopy(p.obj)
    obj.update(currency="jpy", amount=1000, amount_captured=1000, amount_refunded=0)
    rec = map_object("charge", obj, p.meta("charge"), CFG)[0]
    assert (rec["fields"]["Amount__c"], rec["fields"]["Currency__c"]) == ("1000", "JPY")


def test_bhd_refund_is_three_decimal(payloads: list[Payload], check: Any) -> None:
    p = _one(payloads, "stripe-openapi/objects/refund.json")
    obj = dict(p.obj, currency="bhd", amount=1234)
    upserts = map_object("refund", obj, p.meta("refund"), CFG)
    check(upserts)
    assert upserts[0]["fields"]["Amount__c"] == "1.234"
    assert upserts[0]["fields"]["Currency__c"] == "BHD"
    assert upserts[0]["parents"][0]["external_id"] == p.obj["charge"]


def test_dispute_won_and_evidence_due(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-openapi/objects/dispute.json")
    rec = map_object("dispute", dict(p.obj, status="won"), p.meta("dispute"), CFG)[0]
    assert rec["fields"]["Status__c"] == "Won"
    assert rec["parents"] == [{"relationship": "Payment__r", "sobject": "Stripe_Payment__c",
                               "external_id_field": "Stripe_Charge_Id__c", "external_id": p.obj["charge"]}]
    q = _one(payloads, "stripe-openapi/objects/dispute.json")
    fields = _map(q, "dispute")[0]["fields"]
    assert fields["Status__c"] == "Warning Needs Response"
    assert fields["Evidence_Due_By__c"] == "2024-08-14T23:59:59.000Z"   # due_by 1723679999


def test_invoice_paid_old_and_basil_shapes(payloads: list[Payload]) -> None:
    for file in ("stripe-ruby-mock/invoice.paid.json", "zulip/billing_page_permissions--Event.list.3.json"):
        p = _one(payloads, file, "invoice")
        rec = _by_sobject(_map(p, "invoice"), "Stripe_Invoice__c")
        assert rec["fields"]["Status__c"] == "Paid"
        assert rec["fields"]["Paid_At__c"] is not None and rec["fields"]["Paid_At__c"].endswith(".000Z")
        assert rec["fields"]["Amount_Paid__c"] is not None
        assert rec["parents"][0]["external_id"] == p.obj["customer"]


def test_invoice_subscription_from_basil_parent(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-openapi/objects/invoice.json")
    fields = _map(p, "invoice")[0]["fields"]
    assert fields["Status__c"] == "Draft"
    assert fields["Subscription_Id__c"] == "subscription"
    assert fields["Due_Date__c"] == "2009-02-13T23:31:30.000Z"


def test_payout_fields_and_date(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-openapi/objects/payout.json")
    fields = _map(p, "payout")[0]["fields"]
    assert fields["Status__c"] == "In Transit"
    assert fields["Amount__c"] == "11.00" and fields["Arrival_Date__c"] == "2009-02-13"
    assert fields["Automatic__c"] is True
    assert "Reconciliation_Status__c" not in fields  # reconcile owns it


def test_customer_account_and_contact_modes_respect_pii_allowlist(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/customer.updated.json")
    obj = dict(p.obj, name="Jenny Rosen", email="jenny@example.com", phone="+15555550100")
    meta = p.meta("customer")
    account = map_object("customer", obj, meta, CFG)[0]
    assert account["sobject"] == "Account" and account["external_id"] == obj["id"]
    assert account["fields"]["Name"] == "Jenny Rosen" and account["fields"]["Phone"] == "+15555550100"
    no_pii = map_object("customer", obj, meta, MappingConfig(pii_allowlist=frozenset()))[0]
    assert no_pii["fields"]["Name"] == obj["id"]
    assert "jenny" not in json.dumps(no_pii).lower() and "5555550100" not in json.dumps(no_pii)
    contact = map_object("customer", obj, meta, MappingConfig(customer_target="Contact"))[0]
    assert contact["sobject"] == "Contact"
    assert (contact["fields"]["FirstName"], contact["fields"]["LastName"]) == ("Jenny", "Rosen")
    assert contact["fields"]["Email"] == "jenny@example.com"
    unnamed = map_object("customer", dict(obj, name=""), meta, MappingConfig(customer_target="Contact"))[0]
    assert unnamed["fields"]["LastName"] == obj["id"]


def test_deleted_customer_syncs_nothing(payloads: list[Payload]) -> None:
    for file in ("stripe-ruby-mock/customer.deleted.json", "stripe-sync-engine/customer_deleted.json"):
        assert _map(_one(payloads, file), "customer") == []


def test_common_fields_and_legal_entity(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/payout.paid.json")
    meta = EventMeta(p.event_id, p.event_type, p.created, "acct_123", True, p.meta("payout").version)
    cfg = MappingConfig(legal_entities={"acct_123": "Paysync GmbH"}, multi_currency=True)
    fields = map_object("payout", p.obj, meta, cfg)[0]["fields"]
    assert fields["Stripe_Account_Id__c"] == "acct_123" and fields["Legal_Entity__c"] == "Paysync GmbH"
    assert fields["Livemode__c"] is True and fields["CurrencyIsoCode"] == "USD"
    assert fields["Last_Stripe_Event_Id__c"] == p.event_id
    assert fields["Last_Stripe_Event_At__c"].endswith(".000Z")
    platform = map_object("payout", p.obj, p.meta("payout"), cfg)[0]["fields"]
    assert "Legal_Entity__c" not in platform and "CurrencyIsoCode" in platform


def test_opportunity_and_order_links_from_metadata(payloads: list[Payload], check: Any) -> None:
    p = _one(payloads, "stripe-ruby-mock/charge.refunded.json")
    obj = dict(p.obj, metadata={"salesforce_opportunity_id": OPP, "salesforce_order_id": ORDER}, payment_intent=None)
    upserts = map_object("charge", obj, p.meta("charge"), CFG)
    check(upserts)
    payment = _by_sobject(upserts, "Stripe_Payment__c")
    assert payment["fields"]["Opportunity__c"] == OPP and payment["fields"]["Order__c"] == ORDER
    opp = _by_sobject(upserts, "Opportunity")
    assert (opp["external_id_field"], opp["external_id"]) == ("Id", OPP)
    assert opp["fields"] == {"Stripe_Payment_Status__c": "Refunded"}
    assert _by_sobject(upserts, "Order")["external_id"] == ORDER


@pytest.mark.parametrize("bad", ["0015g00000AbCdEAAV", "006short", "006" + "x" * 20, "", 6, None])
def test_invalid_salesforce_ids_are_ignored(payloads: list[Payload], bad: Any) -> None:
    p = _one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    obj = dict(p.obj, metadata={"salesforce_opportunity_id": bad}, payment_intent=None)
    upserts = map_object("charge", obj, p.meta("charge"), CFG)
    assert [u["sobject"] for u in upserts] == ["Stripe_Payment__c"]
    assert upserts[0]["fields"]["Opportunity__c"] is None


def test_payment_intent_owns_links_only(payloads: list[Payload], check: Any) -> None:
    p = _one(payloads, "stripe-ruby-mock/payment_intent.succeeded.json")
    obj = dict(p.obj, metadata={"salesforce_opportunity_id": OPP})
    upserts = map_object("payment_intent", obj, p.meta("payment_intent"), CFG)
    check(upserts)
    assert len(upserts) == 1
    rec = upserts[0]
    assert rec["external_id"] == p.obj["charges"]["data"][0]["id"]  # API 2020-08-27: no latest_charge yet
    assert rec["fields"]["Opportunity__c"] == OPP
    assert not {"Status__c", "Amount__c", "Last_Stripe_Event_Id__c", "Stripe_Payment_Intent_Id__c"} & set(rec["fields"])
    # without links a payment intent has nothing of its own to write: the charge carries its id
    assert map_object("payment_intent", dict(p.obj, metadata={}), p.meta("payment_intent"), CFG) == []
    # and the charge of a payment intent leaves those links to it
    c = _one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    charge = map_object("charge", dict(c.obj, metadata={"salesforce_opportunity_id": OPP}), c.meta("charge"), CFG)
    assert "Opportunity__c" not in _by_sobject(charge, "Stripe_Payment__c")["fields"]
    assert _by_sobject(charge, "Stripe_Payment__c")["fields"]["Stripe_Payment_Intent_Id__c"] == c.obj["payment_intent"]
    assert _by_sobject(charge, "Opportunity")["fields"]["Stripe_Payment_Status__c"] == "Succeeded"


def test_payment_intent_without_charge(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/payment_intent.created.json")
    assert p.obj.get("latest_charge") is None
    assert _map(p, "payment_intent") == []
    canceled = dict(p.obj, status="canceled", metadata={"salesforce_order_id": ORDER})
    upserts = map_object("payment_intent", canceled, p.meta("payment_intent"), CFG)
    assert [(u["sobject"], u["fields"]) for u in upserts] == [("Order", {"Stripe_Payment_Status__c": "Canceled"})]


def test_free_text_truncated_ids_never(payloads: list[Payload]) -> None:
    p = _one(payloads, "stripe-ruby-mock/charge.failed.json")
    long_id = "ch_" + "A" * 300
    obj = dict(p.obj, id=long_id, failure_message="x" * 1000, description="d" * 300)
    fields = map_object("charge", obj, p.meta("charge"), CFG)[0]
    assert fields["external_id"] == long_id
    assert len(fields["fields"]["Failure_Message__c"]) == 255 and len(fields["fields"]["Description__c"]) == 255


@pytest.mark.parametrize(
    ("object_type", "file", "change", "code"),
    [
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"id": None}, "MISSING_FIELD"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"amount": 10.5}, "BAD_AMOUNT"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"amount": "1000"}, "BAD_AMOUNT"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"currency": "zzz"}, "BAD_CURRENCY"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"status": "exploded"}, "UNKNOWN_STATUS"),
        ("refund", "stripe-openapi/objects/refund.json", {"amount": True}, "BAD_AMOUNT"),
        ("dispute", "stripe-openapi/objects/dispute.json", {"currency": None}, "BAD_CURRENCY"),
        ("invoice", "stripe-openapi/objects/invoice.json", {"amount_due": 1.0}, "BAD_AMOUNT"),
        ("payout", "stripe-openapi/objects/payout.json", {"object": "charge"}, "BAD_OBJECT"),
        ("customer", "stripe-openapi/objects/customer.json", {"id": ""}, "MISSING_FIELD"),
        ("payment_intent", "stripe-openapi/objects/payment_intent.json", {"amount": None}, "BAD_AMOUNT"),
    ],
)
def test_malformed_objects_raise_mapping_error(
    payloads: list[Payload], object_type: str, file: str, change: dict[str, Any], code: str
) -> None:
    p = _one(payloads, file)
    with pytest.raises(MappingError) as info:
        map_object(object_type, dict(p.obj, **change), p.meta(object_type), CFG)
    assert info.value.code == code


def test_unsupported_type_is_a_mapping_error() -> None:
    meta = EventMeta("evt_1", "balance.available", 1, None, False, "1::evt_1")
    with pytest.raises(MappingError) as info:
        map_object("balance", {"object": "balance"}, meta, CFG)
    assert info.value.code == "UNSUPPORTED_TYPE"


def test_fixture_dir_is_the_shared_one(stripe_fixtures: Path) -> None:
    assert (stripe_fixtures / "SOURCES.md").is_file()
