"""dispute -> Stripe_Dispute__c, child of its charge."""

from __future__ import annotations
from typing import Any


from core_helpers import CFG, Payload, map_payload, one
from core.mapping import map_object


def test_dispute_won_and_evidence_due(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-openapi/objects/dispute.json")
    rec = map_object("dispute", dict(p.obj, status="won"), p.meta("dispute"), CFG)[0]
    assert rec["fields"]["Status__c"] == "Won"
    assert rec["parents"] == [{"relationship": "Payment__r", "sobject": "Stripe_Payment__c",
                               "external_id_field": "Stripe_Charge_Id__c", "external_id": p.obj["charge"]}]
    q = one(payloads, "stripe-openapi/objects/dispute.json")
    fields = map_payload(q, "dispute")[0]["fields"]
    assert fields["Status__c"] == "Warning Needs Response"
    assert fields["Evidence_Due_By__c"] == "2024-08-14T23:59:59.000Z"   # due_by 1723679999
