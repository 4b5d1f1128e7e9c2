"""invoice -> Stripe_Invoice__c, old and basil shapes."""

from __future__ import annotations
from typing import Any


from core_helpers import Payload, by_sobject, map_payload, one


def test_invoice_paid_old_and_basil_shapes(payloads: list[Payload]) -> None:
    for file in ("stripe-ruby-mock/invoice.paid.json", "zulip/billing_page_permissions--Event.list.3.json"):
        p = one(payloads, file, "invoice")
        rec = by_sobject(map_payload(p, "invoice"), "Stripe_Invoice__c")
        assert rec["fields"]["Status__c"] == "Paid"
        assert rec["fields"]["Paid_At__c"] is not None and rec["fields"]["Paid_At__c"].endswith(".000Z")
        assert rec["fields"]["Amount_Paid__c"] is not None
        assert rec["parents"][0]["external_id"] == p.obj["customer"]


def test_invoice_subscription_from_basil_parent(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-openapi/objects/invoice.json")
    fields = map_payload(p, "invoice")[0]["fields"]
    assert fields["Status__c"] == "Draft"
    assert fields["Subscription_Id__c"] == "subscription"
    assert fields["Due_Date__c"] == "2009-02-13T23:31:30.000Z"
