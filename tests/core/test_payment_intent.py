"""payment_intent -> the links of its latest charge; a canceled one without a charge cancels its Order."""

from __future__ import annotations
from typing import Any


from core_helpers import CFG, OPP, ORDER, Payload, by_sobject, map_payload, one
from core.mapping import map_object


def test_payment_intent_owns_links_only(payloads: list[Payload], check: Any) -> None:
    p = one(payloads, "stripe-ruby-mock/payment_intent.succeeded.json")
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
    c = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    charge = map_object("charge", dict(c.obj, metadata={"salesforce_opportunity_id": OPP}), c.meta("charge"), CFG)
    assert "Opportunity__c" not in by_sobject(charge, "Stripe_Payment__c")["fields"]
    assert by_sobject(charge, "Stripe_Payment__c")["fields"]["Stripe_Payment_Intent_Id__c"] == c.obj["payment_intent"]
    assert by_sobject(charge, "Opportunity")["fields"]["Stripe_Payment_Status__c"] == "Succeeded"


def test_payment_intent_without_charge(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/payment_intent.created.json")
    assert p.obj.get("latest_charge") is None
    assert map_payload(p, "payment_intent") == []
    canceled = dict(p.obj, status="canceled", metadata={"salesforce_order_id": ORDER})
    upserts = map_object("payment_intent", canceled, p.meta("payment_intent"), CFG)
    version = p.meta("payment_intent").version
    assert [(u["sobject"], u["fields"]) for u in upserts] == [
        ("Order", {"Stripe_Payment_Status__c": "Canceled", "Stripe_Payment_Status_Version__c": version})]
