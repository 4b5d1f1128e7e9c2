"""Issue 19, the mapping half: Stripe as a real account shows it (partial capture, dispute outcomes and appeals,
invoice_payment, invoice.deleted, manual payouts, customers as Account and Contact, Paid_At, status versions).

Expected values are computed here from Stripe's documented shapes and real payloads (tests/fixtures/stripe),
in minor units, by the rules of docs/status-mapping.md — never by calling the mapping's own helpers.
"""

from __future__ import annotations

import copy
from typing import Any

from core_helpers import CFG, OPP, Payload, by_sobject, one
from core.common import EventMeta
from core.config import MappingConfig
from core.mapping import map_object
from core.payout_reconciliation import PayoutMember, reconcile_payout
from core.types.balance_transaction import map_balance_transaction
from core.version import encode_version

META = EventMeta("evt_1", "charge.captured", 1_700_000_100, None, False, encode_version((1_700_000_100, (1,), "evt_1")))


def _charge(payloads: list[Payload], **changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(one(payloads, "stripe-ruby-mock/charge.succeeded.json").obj)
    obj.update(metadata={"salesforce_opportunity_id": OPP}, payment_intent=None, **changes)
    return obj


def _payment(obj: dict[str, Any], meta: EventMeta = META, cfg: MappingConfig = CFG) -> dict[str, Any]:
    return by_sobject(map_object("charge", obj, meta, cfg), "Stripe_Payment__c")["fields"]


# 1. partial capture ---------------------------------------------------------------------------------------

def test_partial_capture_is_a_success_of_the_captured_amount_and_the_release_is_not_a_refund(
        payloads: list[Payload], check: Any) -> None:
    # capture 60 of 100: Stripe shows refunded=false, amount_captured=60, amount_refunded=40 (woocommerce#1073)
    obj = _charge(payloads, amount=10000, amount_captured=6000, amount_refunded=4000, captured=True, refunded=False)
    upserts = map_object("charge", obj, META, CFG)
    check(upserts)
    fields = by_sobject(upserts, "Stripe_Payment__c")["fields"]
    assert fields["Status__c"] == "Succeeded"
    assert (fields["Amount_Captured__c"], fields["Amount_Released__c"], fields["Amount_Refunded__c"]) == (
        "60.00", "40.00", "0.00")
    assert by_sobject(upserts, "Opportunity")["fields"]["Stripe_Payment_Status__c"] == "Succeeded"


def test_a_real_refund_after_a_partial_capture_counts_only_itself(payloads: list[Payload]) -> None:
    # a later refund of 10 folds into amount_refunded: 40 released + 10 refunded = 50
    partial = _payment(_charge(payloads, amount=10000, amount_captured=6000, amount_refunded=5000, captured=True))
    assert (partial["Status__c"], partial["Amount_Refunded__c"], partial["Amount_Released__c"]) == (
        "Partially Refunded", "10.00", "40.00")
    # capture 30 of 100 (70 released) is not "Refunded"; refunding the 30 makes it so (refunded=true, 100 in total)
    assert _payment(_charge(payloads, amount=10000, amount_captured=3000, amount_refunded=7000,
                            captured=True))["Status__c"] == "Succeeded"
    full = _payment(_charge(payloads, amount=10000, amount_captured=3000, amount_refunded=10000, captured=True,
                            refunded=True))
    assert (full["Status__c"], full["Amount_Refunded__c"]) == ("Refunded", "30.00")


def test_an_authorization_released_without_capture_is_canceled(payloads: list[Payload]) -> None:
    fields = _payment(_charge(payloads, amount=10000, amount_captured=0, amount_refunded=10000, captured=False,
                              refunded=True))
    assert (fields["Status__c"], fields["Amount_Released__c"], fields["Amount_Refunded__c"]) == (
        "Canceled", "100.00", "0.00")


# 2. disputes ----------------------------------------------------------------------------------------------

def _dispute(payloads: list[Payload], status: str) -> list[dict[str, Any]]:
    p = one(payloads, "stripe-sync-engine/charge_dispute_funds_reinstated.json", "dispute")
    return map_object("dispute", dict(p.obj, status=status), p.meta("dispute"), CFG)


def test_dispute_appeals_map(payloads: list[Payload], check: Any) -> None:
    for status, value in (("appeal_needs_response", "Appeal Needs Response"),
                          ("appeal_under_review", "Appeal Under Review")):
        upserts = _dispute(payloads, status)
        check(upserts)
        assert by_sobject(upserts, "Stripe_Dispute__c")["fields"]["Status__c"] == value


# The won-dispute rule (a favourable outcome gives the payment its charge's own status back, versioned in
# Stripe_Payment__c.Status_Version__c so no replayed charge snapshot undoes it) is tested in tests/core/test_dispute.py
# and, through the sink's version guard, in tests/sink/test_payment_status_versions.py.


# 3. invoice_payment -----------------------------------------------------------------------------------------

def test_invoice_payment_links_invoice_and_payment_in_basil_shapes(payloads: list[Payload], check: Any) -> None:
    p = one(payloads, "stripe-sync-engine/invoice_payment_paid.json")
    upserts = map_object("invoice_payment", p.obj, p.meta("invoice_payment"), CFG)
    check(upserts)
    record = by_sobject(upserts, "Stripe_Invoice_Payment__c")
    assert record["external_id"] == p.obj["id"]
    assert record["fields"]["Stripe_Payment_Intent_Id__c"] == p.obj["payment"]["payment_intent"]
    assert (record["fields"]["Status__c"], record["fields"]["Amount_Paid__c"]) == ("Paid", "20.00")
    assert {(r["relationship"], r["external_id"]) for r in record["parents"]} == {("Invoice__r", p.obj["invoice"])}
    by_charge = dict(p.obj, payment={"type": "charge", "charge": "ch_123"})
    upserts = map_object("invoice_payment", by_charge, p.meta("invoice_payment"), CFG)
    check(upserts)
    payment = by_sobject(upserts, "Stripe_Payment__c")
    assert payment["external_id"] == "ch_123"
    assert payment["parents"][0]["relationship"] == "Invoice__r" and payment["parents"][0]["external_id"] == p.obj["invoice"]


def test_old_shapes_keep_linking(payloads: list[Payload], check: Any) -> None:
    charge = map_object("charge", _charge(payloads, invoice="in_old"), META, CFG)
    assert [r["external_id"] for r in by_sobject(charge, "Stripe_Payment__c")["parents"]
            if r["relationship"] == "Invoice__r"] == ["in_old"]
    inv = one(payloads, "stripe-ruby-mock/invoice.paid.json", "invoice")
    upserts = map_object("invoice", dict(inv.obj, charge="ch_old"), inv.meta("invoice"), CFG)
    check(upserts)
    assert by_sobject(upserts, "Stripe_Payment__c")["external_id"] == "ch_old"


# 4. manual payouts (mapping half) ---------------------------------------------------------------------------

def test_manual_payout_has_its_own_state_never_discrepancy() -> None:
    members = [PayoutMember("txn_1", 1000, 30, 970, "usd")]
    manual = reconcile_payout("po_1", 5000, "usd", members, 1, META, CFG, automatic=False)
    assert manual["fields"]["Reconciliation_Status__c"] == "Not Applicable (manual payout)"
    assert reconcile_payout("po_1", 5000, "usd", [], None, META, CFG, reconciliation_status="not_applicable")[
        "fields"]["Reconciliation_Status__c"] == "Not Applicable (manual payout)"


def test_an_incomplete_member_list_is_never_a_discrepancy() -> None:
    members = [PayoutMember("txn_1", 1000, 30, 970, "usd")]
    listed_early = reconcile_payout("po_1", 5000, "usd", members, 1, META, CFG, automatic=True,
                                    reconciliation_status="in_progress")
    assert listed_early["fields"]["Reconciliation_Status__c"] == "Pending"
    done = reconcile_payout("po_1", 970, "usd", members, 1, META, CFG, automatic=True, reconciliation_status="completed")
    assert done["fields"]["Reconciliation_Status__c"] == "Reconciled"


# 5. status versions -----------------------------------------------------------------------------------------

def test_every_writer_of_the_opportunity_status_carries_its_version(payloads: list[Payload]) -> None:
    inv = one(payloads, "stripe-ruby-mock/invoice.paid.json", "invoice")
    writers = [map_object("charge", _charge(payloads), META, CFG),
               map_object("invoice", dict(inv.obj, metadata={"salesforce_opportunity_id": OPP}), inv.meta("invoice"), CFG),
               map_object("payment_intent", {"id": "pi_1", "object": "payment_intent", "amount": 1, "currency": "usd",
                                             "status": "canceled", "metadata": {"salesforce_opportunity_id": OPP}},
                          META, CFG)]
    for upserts in writers:
        opp = by_sobject(upserts, "Opportunity")
        assert opp["fields"]["Stripe_Payment_Status_Version__c"] == opp["version"]


# 6. invoice.deleted -----------------------------------------------------------------------------------------

def test_a_deleted_draft_reads_deleted(payloads: list[Payload], check: Any) -> None:
    inv = one(payloads, "stripe-ruby-mock/invoice.paid.json", "invoice")
    meta = EventMeta("evt_d", "invoice.deleted", inv.created + 1, None, False, "1:0:evt_d")
    upserts = map_object("invoice", dict(inv.obj, status="draft", metadata={"salesforce_opportunity_id": OPP}), meta, CFG)
    check(upserts)
    assert by_sobject(upserts, "Stripe_Invoice__c")["fields"]["Status__c"] == "Deleted"
    assert by_sobject(upserts, "Opportunity")["fields"]["Stripe_Payment_Status__c"] == "Canceled"
    stub = map_object("invoice", {"id": "in_1", "object": "invoice", "deleted": True}, meta, CFG)
    assert by_sobject(stub, "Stripe_Invoice__c")["fields"]["Status__c"] == "Deleted"


# 7. customers and Paid_At -------------------------------------------------------------------------------------

def test_account_and_its_contact(payloads: list[Payload], check: Any) -> None:
    cus = {"id": "cus_1", "object": "customer", "name": "Jenny Rosen", "email": "jenny@example.com", "phone": "+1"}
    cfg = MappingConfig(customer_target="AccountAndContact", pii_allowlist=frozenset({"name", "email"}))
    upserts = map_object("customer", cus, META, cfg)
    check(upserts)
    assert [u["sobject"] for u in upserts] == ["Account", "Contact"]
    contact = upserts[1]
    assert contact["parents"] == [{"relationship": "Account", "sobject": "Account",
                                   "external_id_field": "Stripe_Customer_Id__c", "external_id": "cus_1"}]
    assert (contact["fields"]["LastName"], contact["fields"]["FirstName"], contact["fields"]["Email"]) == (
        "Rosen", "Jenny", "jenny@example.com")
    assert "Phone" not in contact["fields"] and "Phone" not in upserts[0]["fields"]


def test_payments_and_invoices_keep_a_customer_link_in_every_mode(payloads: list[Payload]) -> None:
    expected = {"Account": {"Account__r"}, "Contact": {"Contact__r"}, "AccountAndContact": {"Account__r", "Contact__r"}}
    inv = one(payloads, "stripe-ruby-mock/invoice.paid.json", "invoice")
    for mode, relationships in expected.items():
        cfg = MappingConfig(customer_target=mode)  # type: ignore[arg-type]
        for upserts in (map_object("charge", _charge(payloads, customer="cus_1"), META, cfg),
                        map_object("invoice", dict(inv.obj, customer="cus_1"), inv.meta("invoice"), cfg)):
            links = {r["relationship"] for r in upserts[0]["parents"] if r["sobject"] in ("Account", "Contact")}
            assert links == relationships, mode


def test_paid_at_is_the_capture_time(payloads: list[Payload], stripe_fixtures: Any) -> None:
    # a charge has no capture timestamp; its balance transaction is created at capture (none while uncaptured)
    obj = _charge(payloads, created=1_700_000_000, captured=True, amount_captured=100, amount=100)
    assert "Paid_At__c" not in _payment(obj)  # old code: the charge's creation time
    bt = {"id": "txn_1", "source_id": "ch_1", "payout_id": None, "livemode": False, "type": "charge",
          "reporting_category": "charge", "amount": 100, "fee": 3, "net": 97, "currency": "usd",
          "exchange_rate": None, "available_on": 1_700_100_000, "created": 1_700_000_100, "status": "pending"}
    partial = by_sobject(map_balance_transaction(bt, CFG), "Stripe_Payment__c")
    assert partial["fields"]["Paid_At__c"] == "2023-11-14T22:15:00.000Z"
    inv = one(payloads, "stripe-ruby-mock/invoice.paid.json", "invoice")
    paid = dict(inv.obj, status="paid", status_transitions={"paid_at": 1_700_000_000})
    assert by_sobject(map_object("invoice", paid, inv.meta("invoice"), CFG), "Stripe_Invoice__c")[
        "fields"]["Paid_At__c"] == "2023-11-14T22:13:20.000Z"
