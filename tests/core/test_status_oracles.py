"""Issue 19 (8): every status stripe-python 16.1's types allow maps to a picklist value of salesforce/, or is a
documented deliberate skip (docs/status-mapping.md). The oracle is Stripe's own SDK, not our tables."""

from __future__ import annotations

import typing
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import stripe

from core.types.charge import charge_payment_status
from core.types.dispute import DISPUTE_STATUS
from core.types.invoice import INVOICE_STATUS
from core.types.payment_intent import PAYMENT_INTENT_RANK
from core.types.payout import PAYOUT_STATUS
from core.types.refund import REFUND_STATUS
from core.payout_reconciliation import PayoutMember, reconcile_payout
from core.common import EventMeta
from core.config import MappingConfig
from paysync.paths import SALESFORCE_METADATA_DIR

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
META = EventMeta("evt_1", "payout.paid", 1, None, False, "1:0:evt_1")


def literal_values(cls: type, attribute: str) -> set[str]:
    """The `Literal[...]` values of `cls.attribute`'s annotation in stripe-python (the SDK's own types)."""
    found: set[str] = set()
    stack: list[Any] = [cls.__annotations__[attribute]]
    while stack:
        hint = stack.pop()
        if typing.get_origin(hint) is typing.Literal:
            found.update(typing.get_args(hint))
        else:
            stack.extend(typing.get_args(hint))
    return found


def picklist(sobject: str, field: str) -> set[str]:
    path = SALESFORCE_METADATA_DIR / "objects" / sobject / "fields" / f"{field}.field-meta.xml"
    root = ET.parse(path).getroot()
    global_set = root.findtext("m:valueSet/m:valueSetName", namespaces=NS)
    if global_set:
        gv = ET.parse(SALESFORCE_METADATA_DIR / "globalValueSets" / f"{global_set}.globalValueSet-meta.xml").getroot()
        return {str(v.findtext("m:fullName", namespaces=NS)) for v in gv.findall("m:customValue", NS)}
    return {str(v.findtext("m:fullName", namespaces=NS)) for v in root.findall(".//m:valueSetDefinition/m:value", NS)}


def test_the_sdk_is_the_pinned_one() -> None:
    assert stripe.VERSION.startswith("16.1")


def test_every_dispute_status_maps_to_a_picklist_value() -> None:
    allowed = literal_values(stripe.Dispute, "status")
    assert {"appeal_needs_response", "appeal_under_review"} <= allowed
    assert allowed <= set(DISPUTE_STATUS)
    assert {DISPUTE_STATUS[s] for s in allowed} <= picklist("Stripe_Dispute__c", "Status__c")


def test_every_invoice_status_maps_to_a_picklist_value() -> None:
    allowed = literal_values(stripe.Invoice, "status")
    assert allowed <= set(INVOICE_STATUS)
    assert {INVOICE_STATUS[s] for s in allowed} | {"Deleted"} <= picklist("Stripe_Invoice__c", "Status__c")


@pytest.mark.parametrize("status", sorted(literal_values(stripe.Charge, "status")))
@pytest.mark.parametrize("captured", [True, False])
def test_every_charge_status_maps_to_a_payment_status(status: str, captured: bool) -> None:
    value = charge_payment_status({"status": status, "captured": captured, "amount": 100,
                                   "amount_captured": 100 if captured else 0, "amount_refunded": 0})
    assert value in picklist("Stripe_Payment__c", "Status__c")


def test_every_payment_intent_status_is_ranked() -> None:
    # deliberate skip: a payment intent writes no status picklist of its own (its charge does; docs/status-mapping.md)
    assert literal_values(stripe.PaymentIntent, "status") <= set(PAYMENT_INTENT_RANK)


def test_refund_and_payout_statuses_from_the_docs() -> None:
    # stripe-python types Refund.status / Payout.status as plain str; the values are the API reference's
    # ("Refund object: status — pending, requires_action, succeeded, failed, or canceled";
    #  "Payout object: status — paid, pending, in_transit, canceled or failed")
    refund = {"pending", "requires_action", "succeeded", "failed", "canceled"}
    payout = {"paid", "pending", "in_transit", "canceled", "failed"}
    assert refund <= set(REFUND_STATUS) and {REFUND_STATUS[s] for s in refund} <= picklist("Stripe_Refund__c", "Status__c")
    assert payout <= set(PAYOUT_STATUS) and {PAYOUT_STATUS[s] for s in payout} <= picklist("Stripe_Payout__c", "Status__c")


def test_every_payout_reconciliation_status_maps_to_a_picklist_value() -> None:
    allowed = literal_values(stripe.Payout, "reconciliation_status")
    assert allowed == {"completed", "in_progress", "not_applicable"}
    values = picklist("Stripe_Payout__c", "Reconciliation_Status__c")
    members = [PayoutMember("txn_1", 100, 3, 97, "usd")]
    for status in allowed:
        for amount in (97, 98):
            rec = reconcile_payout("po_1", amount, "usd", members, 1, META, MappingConfig(), True, status)
            assert rec["fields"]["Reconciliation_Status__c"] in values
            if status == "in_progress":
                assert rec["fields"]["Reconciliation_Status__c"] == "Pending"
        unknown_automatic = reconcile_payout("po_1", 98, "usd", members, 1, META, MappingConfig(), None, status)
        assert unknown_automatic["fields"]["Reconciliation_Status__c"] in values
