"""Payout reconciliation: Reconciled exactly when the nets of its members add up to the payout amount."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.payout_reconciliation import PayoutMember, reconcile_payout
from paysync.money import to_minor

CFG = MappingConfig()
META = EventMeta(None, None, 1_700_000_000, None, False, "1700000000::")


def _members(nets: list[int], currency: str = "usd") -> list[PayoutMember]:
    return [PayoutMember(f"txn_{i}", net + 30, 30, net, currency) for i, net in enumerate(nets)]


def test_reconcile_states(check: Any) -> None:
    members = _members([1000, 2500, -300])
    pending = reconcile_payout("po_1", 3200, "usd", members[:2], 3, META, CFG)
    assert pending["fields"]["Reconciliation_Status__c"] == "Pending"
    assert pending["fields"]["Discrepancy__c"] is None
    done = reconcile_payout("po_1", 3200, "usd", members, 3, META, CFG)
    check([pending, done])
    assert (done["fields"]["Reconciliation_Status__c"], done["fields"]["Net__c"]) == ("Reconciled", "32.00")
    assert (done["fields"]["Gross__c"], done["fields"]["Fees__c"], done["fields"]["Transaction_Count__c"]) == ("32.90", "0.90", 3)
    off = reconcile_payout("po_1", 3201, "usd", members, 3, META, CFG)
    assert (off["fields"]["Reconciliation_Status__c"], off["fields"]["Discrepancy__c"]) == ("Discrepancy", "0.01")
    unknown_amount = reconcile_payout("po_1", None, None, members, 3, META, CFG)
    assert unknown_amount["fields"]["Reconciliation_Status__c"] == "Pending"
    duplicated = reconcile_payout("po_1", 3200, "usd", members + members[:1], 3, META, CFG)
    assert duplicated["fields"]["Reconciliation_Status__c"] == "Reconciled"
    assert not {"Amount__c", "Status__c", "Last_Stripe_Event_Id__c"} & set(done["fields"])


def test_reconcile_zero_and_three_decimal_and_mismatch() -> None:
    assert reconcile_payout("po_j", 5000, "jpy", _members([5000], "jpy"), 1, META, CFG)["fields"]["Net__c"] == "5000"
    assert reconcile_payout("po_b", 1234, "bhd", _members([1234], "bhd"), 1, META, CFG)["fields"]["Net__c"] == "1.234"
    with pytest.raises(MappingError) as info:
        reconcile_payout("po_x", 10, "usd", _members([10], "eur"), 1, META, CFG)
    assert info.value.code == "CURRENCY_MISMATCH"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=30), st.integers(-5, 5))
def test_reconciled_exactly_when_nets_sum_to_amount(nets: list[int], delta: int) -> None:
    members = _members(nets, "kwd")
    rec = reconcile_payout("po_1", sum(nets) + delta, "kwd", members, len(members), META, CFG)
    expected = "Reconciled" if delta == 0 else "Discrepancy"
    assert rec["fields"]["Reconciliation_Status__c"] == expected
    assert to_minor(rec["fields"]["Discrepancy__c"], "kwd") == delta


def test_manual_payouts_have_their_own_state_and_a_failed_automatic_one_is_still_reconciled() -> None:
    members = _members([1000, 2200])
    manual = reconcile_payout("po_m", 3200, "usd", [], None, META, CFG, automatic=False,
                              reconciliation_status="not_applicable")
    assert manual["fields"]["Reconciliation_Status__c"] == "Not Applicable (manual payout)"
    # a failed automatic payout is `not_applicable` too, but Stripe lists its members: reconciled as usual
    failed = reconcile_payout("po_f", 3200, "usd", members, 2, META, CFG, automatic=True,
                              reconciliation_status="not_applicable")
    assert failed["fields"]["Reconciliation_Status__c"] == "Reconciled"
    unknown = reconcile_payout("po_u", 3200, "usd", [], None, META, CFG, reconciliation_status="not_applicable")
    assert unknown["fields"]["Reconciliation_Status__c"] == "Not Applicable (manual payout)"
    in_progress = reconcile_payout("po_p", 3201, "usd", members, 2, META, CFG, automatic=True,
                                   reconciliation_status="in_progress")
    assert in_progress["fields"]["Reconciliation_Status__c"] == "Pending"
