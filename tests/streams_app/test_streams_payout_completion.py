"""Issue 19 (4), the streams half: the payout join never freezes an incomplete member list into a Discrepancy,
and a manual payout gets its own state from its header alone (it has no members to wait for)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from paysync.codec import AvroCodec
from streams.metrics import StreamMetrics
from streams.outputs import Target
from streams.ports import RealMapper
from streams.processor import Processor, Tables
from streams.settings import StreamSettings

NOW = 1_800_000_000_000


def _processor() -> Processor:
    return Processor(RealMapper(StreamSettings().mapping), AvroCodec(), StreamMetrics(CollectorRegistry()), Tables())


def _meta(version: str) -> dict[str, Any]:
    return {"event_id": None, "event_type": None, "created": 1_700_000_000, "account": None, "livemode": False,
            "version": version}


def _header(amount: int, version: str, automatic: bool, reconciliation_status: str) -> dict[str, Any]:
    return {"kind": "header", "payout_id": "po_1", "amount": amount, "currency": "usd", "version": version,
            "meta": _meta(version), "automatic": automatic, "reconciliation_status": reconciliation_status,
            "origin": ["t", 0, 0], "received_at": 0}


def _member(bt_id: str, net: int, expected: int | None) -> dict[str, Any]:
    return {"kind": "member", "payout_id": "po_1",
            "member": {"balance_transaction_id": bt_id, "amount": net, "fee": 0, "net": net, "currency": "usd"},
            "expected_count": expected, "meta": _meta("1700000000:1.0:txn"), "origin": ["t", 0, 0], "received_at": 0}


def _statuses(proc: Processor, message: dict[str, Any]) -> list[str]:
    step = proc.on_payout_message(message, NOW)
    proc.apply(step)
    return [o.value["fields"]["Reconciliation_Status__c"] for o in step.outputs if o.target is Target.UPSERT]


def test_an_in_progress_list_is_pending_then_reconciled_once_completed() -> None:
    proc = _processor()
    assert _statuses(proc, _header(300, "1700000000:2:evt_paid", True, "in_progress")) == []
    # the member list is not final: no count yet (it is set only on a listing after completion)
    assert _statuses(proc, _member("txn_1", 100, None)) == []
    # payout.reconciliation_completed: nothing concluded from the header alone while the count is unknown
    assert _statuses(proc, _header(300, "1700000100:2:evt_done", True, "completed")) == []
    assert _statuses(proc, _member("txn_1", 100, 2)) == []  # listed again, with the final count
    assert _statuses(proc, _member("txn_2", 200, 2)) == ["Reconciled"]


def test_a_count_read_while_in_progress_never_concludes_a_discrepancy() -> None:
    proc = _processor()
    _statuses(proc, _header(300, "1700000000:2:evt_paid", True, "in_progress"))
    assert _statuses(proc, _member("txn_1", 100, 1)) == ["Pending"]  # old code: Discrepancy (100 of 300)


def test_a_manual_payout_gets_its_own_state_from_its_header() -> None:
    proc = _processor()
    assert _statuses(proc, _header(300, "1700000000:2:evt_paid", False, "not_applicable")) == [
        "Not Applicable (manual payout)"]
