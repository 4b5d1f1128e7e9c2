"""payout -> Stripe_Payout__c (its own fields; the reconciliation is test_payout_reconciliation.py)."""

from __future__ import annotations
from typing import Any


from core_helpers import Payload, map_payload, one


def test_payout_fields_and_date(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-openapi/objects/payout.json")
    fields = map_payload(p, "payout")[0]["fields"]
    assert fields["Status__c"] == "In Transit"
    assert fields["Amount__c"] == "11.00" and fields["Arrival_Date__c"] == "2009-02-13"
    assert fields["Automatic__c"] is True
    assert "Reconciliation_Status__c" not in fields  # reconcile owns it
