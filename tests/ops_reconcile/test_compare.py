"""The comparison finds each kind of drift, and compares values by meaning, not by text."""

from __future__ import annotations

from decimal import Decimal

from ops.reconcile.compare import compare, same

KEY = ("Stripe_Payment__c", "ch_1")


def test_values_compare_by_meaning() -> None:
    assert same("10.50", Decimal("10.5"))
    assert same("1000", 1000)
    assert same("2026-01-02T03:04:05.000Z", "2026-01-02T03:04:05.000+0000")
    assert same(None, "")
    assert not same("10.50", Decimal("10.51"))
    assert not same("1.234", Decimal("1.23"))
    assert not same("2026-01-02T03:04:05.000Z", "2026-01-02T03:04:06.000+0000")
    assert not same(True, False)


def test_each_kind_of_drift() -> None:
    expected = {
        KEY: {"Amount__c": "10.00", "Status__c": "Refunded", "Last_Stripe_Event_Id__c": "evt_2",
              "Payout__r.Stripe_Payout_Id__c": "po_1"},
        ("Stripe_Payment__c", "ch_missing"): {"Amount__c": "1.00"},
    }
    actual = {
        KEY: {"Amount__c": Decimal("10.01"), "Status__c": "Succeeded", "Last_Stripe_Event_Id__c": "evt_1",
              "Payout__r.Stripe_Payout_Id__c": "po_1"},
        ("Stripe_Payment__c", "ch_extra"): {"Amount__c": Decimal("5")},
    }
    drifts = {(d.kind, d.external_id, d.field) for d in compare(expected, actual)}
    assert drifts == {
        ("mismatch", "ch_1", "Amount__c"),
        ("stale", "ch_1", "Status__c"),
        ("missing", "ch_missing", None),
        ("extra", "ch_extra", None),
    }


def test_clean_when_equal() -> None:
    expected = {KEY: {"Amount__c": "1000", "Livemode__c": False}}
    actual = {KEY: {"Amount__c": Decimal("1000"), "Livemode__c": False}}
    assert compare(expected, actual) == []
