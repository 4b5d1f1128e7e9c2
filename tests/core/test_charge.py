"""charge -> Stripe_Payment__c (+ Opportunity/Order status): statuses, amounts, card, links, free text."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from core_helpers import CFG, KNOWN_MALFORMED, OPP, ORDER, Payload, by_sobject, map_payload, one, object_type_of
from core.common import EventMeta
from core.mapping import map_object
from core.types.charge import charge_payment_status


def test_full_refund_is_refunded(payloads: list[Payload]) -> None:
    rec = by_sobject(map_payload(one(payloads, "stripe-ruby-mock/charge.refunded.json"), "charge"), "Stripe_Payment__c")
    assert rec["fields"]["Status__c"] == "Refunded"
    assert rec["fields"]["Amount_Refunded__c"] == rec["fields"]["Amount__c"] == "1.00"
    assert rec["fields"]["Card_Brand__c"] == "visa" and rec["fields"]["Card_Last4__c"] == "4242"


def test_partial_refund_is_partially_refunded(payloads: list[Payload]) -> None:
    p = one(payloads, "pay-rails/charge.refunded.json")
    rec = by_sobject(map_payload(p, "charge"), "Stripe_Payment__c")
    assert rec["fields"]["Status__c"] == "Partially Refunded"
    assert (rec["fields"]["Amount__c"], rec["fields"]["Amount_Refunded__c"]) == ("15.00", "5.00")


def test_failed_charge_keeps_failure_and_no_paid_at(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/charge.failed.json")
    fields = by_sobject(map_payload(p, "charge"), "Stripe_Payment__c")["fields"]
    assert fields["Status__c"] == "Failed"
    assert fields["Failure_Code__c"] == p.obj["failure_code"]
    assert fields["Failure_Message__c"] == p.obj["failure_message"][:255]
    assert fields.get("Paid_At__c") is None


def test_card_data_beyond_brand_and_last4_never_leaves(payloads: list[Payload]) -> None:
    for p in payloads:
        if object_type_of(p) != "charge" or p.file in KNOWN_MALFORMED:
            continue
        text = json.dumps(map_payload(p, "charge"))
        card = (p.obj.get("payment_method_details") or {}).get("card") or {}
        for secret in ("fingerprint", "exp_month", "exp_year"):
            assert secret not in text
        if len(card.get("fingerprint") or "") >= 8:
            assert card["fingerprint"] not in text


def test_uncaptured_charge_is_pending_then_succeeded(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    obj = copy.deepcopy(p.obj)
    obj.update(captured=False, amount_captured=0)
    assert charge_payment_status(obj) == "Pending"
    obj.update(captured=True, amount_captured=obj["amount"])
    assert charge_payment_status(obj) == "Succeeded"
    obj["disputed"] = True
    assert charge_payment_status(obj) == "Disputed"


def test_jpy_charge_is_zero_decimal(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    obj = copy.deepcopy(p.obj)
    obj.update(currency="jpy", amount=1000, amount_captured=1000, amount_refunded=0)
    rec = map_object("charge", obj, p.meta("charge"), CFG)[0]
    assert (rec["fields"]["Amount__c"], rec["fields"]["Currency__c"]) == ("1000", "JPY")


def test_opportunity_and_order_links_from_metadata(payloads: list[Payload], check: Any) -> None:
    p = one(payloads, "stripe-ruby-mock/charge.refunded.json")
    obj = dict(p.obj, metadata={"salesforce_opportunity_id": OPP, "salesforce_order_id": ORDER}, payment_intent=None)
    upserts = map_object("charge", obj, p.meta("charge"), CFG)
    check(upserts)
    payment = by_sobject(upserts, "Stripe_Payment__c")
    assert payment["fields"]["Opportunity__c"] == OPP and payment["fields"]["Order__c"] == ORDER
    opp = by_sobject(upserts, "Opportunity")
    assert (opp["external_id_field"], opp["external_id"]) == ("Id", OPP)
    assert opp["fields"] == {"Stripe_Payment_Status__c": "Refunded",
                             "Stripe_Payment_Status_Version__c": p.meta("charge").version}
    assert by_sobject(upserts, "Order")["external_id"] == ORDER


@pytest.mark.parametrize("bad", ["0015g00000AbCdEAAV", "006short", "006" + "x" * 20, "", 6, None])
def test_invalid_salesforce_ids_are_ignored(payloads: list[Payload], bad: Any) -> None:
    p = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    obj = dict(p.obj, metadata={"salesforce_opportunity_id": bad}, payment_intent=None)
    upserts = map_object("charge", obj, p.meta("charge"), CFG)
    assert [u["sobject"] for u in upserts] == ["Stripe_Payment__c"]
    assert upserts[0]["fields"]["Opportunity__c"] is None


def test_free_text_truncated_ids_never(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/charge.failed.json")
    long_id = "ch_" + "A" * 300
    obj = dict(p.obj, id=long_id, failure_message="x" * 1000, description="d" * 300)
    fields = map_object("charge", obj, p.meta("charge"), CFG)[0]
    assert fields["external_id"] == long_id
    assert len(fields["fields"]["Failure_Message__c"]) == 255 and len(fields["fields"]["Description__c"]) == 255


def test_the_payment_status_version_follows_the_charge_s_lifecycle(payloads: list[Payload]) -> None:
    """Issue 19 (2): Status_Version__c (phase/created:rank) grows with each later state of the charge, comes from the
    snapshot alone (a replay or re-fetch gets the same one), and moves to phase 1 once Stripe sets `disputed`."""
    from core.version import decode_payment_status_version

    p = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    base = dict(copy.deepcopy(p.obj), metadata={}, payment_intent=None, disputed=False)
    states = [dict(base, status="pending", captured=False, amount_captured=0, amount_refunded=0),
              dict(base, captured=True, amount_captured=base["amount"], amount_refunded=0),
              dict(base, captured=True, amount_captured=base["amount"], amount_refunded=1),
              dict(base, captured=True, amount_captured=base["amount"], amount_refunded=base["amount"], refunded=True),
              dict(base, captured=True, amount_captured=base["amount"], amount_refunded=0, disputed=True)]
    written = [map_object("charge", s, p.meta("charge"), CFG)[0]["fields"] for s in states]
    assert [f["Status__c"] for f in written] == ["Pending", "Succeeded", "Partially Refunded", "Refunded", "Disputed"]
    versions = [decode_payment_status_version(f["Status_Version__c"]) for f in written]
    assert versions[:4] == sorted(versions[:4]) and len(set(versions)) == 5
    assert [v[0] for v in versions] == [0, 0, 0, 0, 1]
    other_event = map_object("charge", states[1], EventMeta("evt_other", "charge.updated", 1, None, False, "1::evt_other"), CFG)
    assert other_event[0]["fields"]["Status_Version__c"] == written[1]["Status_Version__c"]
