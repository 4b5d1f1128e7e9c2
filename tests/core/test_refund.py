"""refund -> Stripe_Refund__c, child of its charge."""

from __future__ import annotations
from typing import Any


from core_helpers import CFG, Payload, one
from core.mapping import map_object


def test_bhd_refund_is_three_decimal(payloads: list[Payload], check: Any) -> None:
    p = one(payloads, "stripe-openapi/objects/refund.json")
    obj = dict(p.obj, currency="bhd", amount=1234)
    upserts = map_object("refund", obj, p.meta("refund"), CFG)
    check(upserts)
    assert upserts[0]["fields"]["Amount__c"] == "1.234"
    assert upserts[0]["fields"]["Currency__c"] == "BHD"
    assert upserts[0]["parents"][0]["external_id"] == p.obj["charge"]
