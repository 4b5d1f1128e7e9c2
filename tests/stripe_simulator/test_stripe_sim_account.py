"""Issue 19, the simulator as real as the account (offline generator): partial captures, dispute appeals and
outcomes, invoice_payment objects with pre-basil shapes for old endpoints, payout reconciliation completing after
`payout.paid`, manual payouts, draft invoices deleted; each checked against stripe-python 16.1's types or Stripe's
published fixtures, and every knob deterministic."""

from __future__ import annotations

import hashlib
import json
import typing
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import stripe

from emulators.stripe_simulator import EventRecord, ScenarioParams, TxnRecord, generate
from emulators.stripe_simulator.fx import DISPUTE_FEE_MINOR, convert, exchange_rate
from emulators.stripe_simulator.params import API_VERSION, LEGACY_API_VERSION
from emulators.stripe_simulator.store import Store
from emulators.stripe_simulator.truth import truth_lines
from emulators.stripe_simulator.versions import render

START = 1_767_225_600  # 2026-01-01T00:00:00Z
Run = tuple[list[EventRecord], list[TxnRecord], list[dict[str, Any]]]


def _params(**kw: Any) -> ScenarioParams:
    return ScenarioParams(**{"seed": 19, "events": 8000, "start_time": START, "manual_capture_rate": 0.3,
                             "dispute_rate": 0.1, "appeal_rate": 0.6, "manual_payout_rate": 0.3,
                             "payout_interval": 900.0, **kw})


@pytest.fixture(scope="module")
def run() -> Run:
    events: list[EventRecord] = []
    txns: list[TxnRecord] = []
    records = list(generate(_params()))
    for r in records:
        (events if isinstance(r, EventRecord) else txns).append(r)
    store = Store()
    store.write(records)
    truth = [json.loads(line) for line in truth_lines(store)]
    store.close()
    return events, txns, truth


def _objects(truth: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {t["object"]["id"]: t["object"] for t in truth if t["kind"] == "object" and t["type"] == kind}


def _literal(cls: type, attribute: str) -> set[str]:
    """The `Literal[...]` values stripe-python allows for `cls.attribute` (`Union[Literal[...], str]`)."""
    hint = cls.__annotations__[attribute]
    return {v for arg in typing.get_args(hint) for v in typing.get_args(arg) if isinstance(v, str)}


def test_partial_captures_report_the_release_in_amount_refunded_and_settle_only_the_captured(run: Run) -> None:
    events, txns, truth = run
    charges, intents = _objects(truth, "charge"), _objects(truth, "payment_intent")
    latest = {t.id: json.loads(t.json) for t in txns}
    charge_txn = {bt["source"]: bt for bt in latest.values() if bt["type"] == "charge"}
    captured_events = {json.loads(e.object_json)["id"]: e for e in events if e.type == "charge.captured"}
    partial = [c for c in charges.values() if c["captured"] and c["amount_captured"] < c["amount"]]
    assert len(partial) >= 10
    for ch in partial:
        snapshot = json.loads(captured_events[ch["id"]].object_json)
        released = ch["amount"] - ch["amount_captured"]
        assert snapshot["amount_refunded"] == released and snapshot["refunded"] is False  # woocommerce#1073
        assert ch["amount_refunded"] >= released
        assert ch["refunded"] == (ch["amount_refunded"] == ch["amount"])
        assert intents[ch["payment_intent"]]["amount_received"] == ch["amount_captured"]
        bt = charge_txn[ch["id"]]
        rate = exchange_rate(ch["currency"], bt["currency"])
        assert bt["amount"] == convert(ch["amount_captured"], ch["currency"], bt["currency"], rate)
    full = [json.loads(e.object_json) for e in captured_events.values()
            if json.loads(e.object_json)["id"] not in {c["id"] for c in partial}]
    assert full and all(c["amount_refunded"] == 0 and c["amount_captured"] == c["amount"] for c in full)
    order = [e.type for e in events if json.loads(e.object_json).get("latest_charge") in {c["id"] for c in partial}
             or json.loads(e.object_json)["id"] in {c["id"] for c in partial}]
    assert "charge.captured" in order and "payment_intent.succeeded" in order


def test_dispute_statuses_appeals_and_the_fee_back_on_a_win(run: Run) -> None:
    events, _, truth = run
    allowed = _literal(stripe.Dispute, "status")
    assert {"appeal_needs_response", "appeal_under_review"} <= allowed
    seen = {json.loads(e.object_json)["status"] for e in events if e.object_type == "dispute"}
    assert seen <= allowed
    assert {"appeal_needs_response", "appeal_under_review", "won", "lost", "warning_closed"} <= seen
    disputes, charges = _objects(truth, "dispute"), _objects(truth, "charge")
    appealed = {json.loads(e.object_json)["id"] for e in events
                if e.object_type == "dispute" and json.loads(e.object_json)["status"] == "appeal_under_review"}
    closes = Counter(json.loads(e.object_json)["id"] for e in events if e.type == "charge.dispute.closed")
    assert all(n == 1 for n in closes.values()) and set(closes) == set(disputes)
    assert {disputes[d]["status"] for d in appealed} == {"won", "lost"}
    for dp in disputes.values():
        assert charges[dp["charge"]]["disputed"] is True  # stays true after a win
        assert dp["amount"] == charges[dp["charge"]]["amount_captured"]
        bts = dp["balance_transactions"]
        if dp["status"] == "won":
            fee = DISPUTE_FEE_MINOR[bts[0]["currency"]]
            assert [b["reporting_category"] for b in bts] == ["dispute", "dispute_reversal"]
            assert bts[0]["fee"] == fee and bts[1]["fee"] == -fee and bts[0]["amount"] == -bts[1]["amount"]
        elif dp["status"] == "lost":
            assert [b["reporting_category"] for b in bts] == ["dispute"]
        if dp["id"] in appealed:
            assert dp["evidence"]["appeal"]["card"]["supporting_files"]


def test_invoice_payments_link_paid_invoices_to_their_payment_intents(run: Run, stripe_fixtures: Path) -> None:
    events, _, truth = run
    example = json.loads((stripe_fixtures / "stripe-openapi" / "fixtures3.json").read_text())["resources"][
        "invoice_payment"]
    invoices, intents, payments = _objects(truth, "invoice"), _objects(truth, "payment_intent"), \
        _objects(truth, "invoice_payment")
    paid = {i for i, inv in invoices.items() if inv["status"] == "paid"}
    assert paid and {p["invoice"] for p in payments.values()} == paid
    assert len(payments) == len(paid)
    statuses = _literal(stripe.InvoicePayment.Payment, "type")
    for ip in payments.values():
        assert set(ip) == set(example)
        assert ip["payment"]["type"] in statuses and ip["payment"]["type"] == "payment_intent"
        pi = intents[ip["payment"]["payment_intent"]]
        assert pi["status"] == "succeeded" and ip["amount_paid"] == pi["amount_received"]
        assert ip["amount_requested"] == invoices[ip["invoice"]]["amount_due"] and ip["status"] == "paid"
    # the pinned (basil and later) shapes have no direct link
    assert not any("charge" in inv or "payment_intent" in inv or "paid" in inv for inv in invoices.values())
    assert not any("invoice" in c for c in _objects(truth, "charge").values())
    paid_events = [e.type for e in events if e.object_id in paid or e.type == "invoice_payment.paid"]
    assert paid_events.index("invoice_payment.paid") < paid_events.index("invoice.paid")


def test_pre_basil_endpoints_get_the_old_invoice_links(run: Run, stripe_fixtures: Path) -> None:
    events, _, truth = run
    old_invoice = json.loads((stripe_fixtures / "stripe-ruby-mock" / "invoice.paid.json").read_text())
    old_charge = json.loads((stripe_fixtures / "stripe-ruby-mock" / "charge.succeeded.json").read_text())
    payments = _objects(truth, "invoice_payment")
    pi_of_invoice = {p["invoice"]: p["payment"]["payment_intent"] for p in payments.values()}
    checked = Counter()
    for e in events:
        old = render(e, LEGACY_API_VERSION)
        if e.type.startswith("invoice_payment."):
            assert old is None and render(e, "") == e.json and render(e, "2025-05-28.basil") is not None
            continue
        assert old is not None
        body = json.loads(old)
        assert body["api_version"] == LEGACY_API_VERSION and json.loads(e.json)["api_version"] == API_VERSION
        obj = body["data"]["object"]
        if e.type == "invoice.paid":
            assert {"charge", "payment_intent", "paid", "paid_out_of_band"} <= set(old_invoice["data"]["object"])
            assert obj["paid"] is True and obj["payment_intent"] == pi_of_invoice[obj["id"]]
            assert obj["charge"] and obj["charge"].startswith("ch_")
            checked["invoice"] += 1
        elif e.object_type == "charge":
            assert "invoice" in old_charge["data"]["object"] and "invoice" in obj
            checked["charge_with_invoice" if obj["invoice"] else "charge"] += 1
        elif e.object_type == "payment_intent":
            assert "invoice" in obj
    assert checked["invoice"] and checked["charge_with_invoice"] and checked["charge"]


def test_reconciliation_completes_after_paid_and_members_appear_as_it_progresses(run: Run) -> None:
    events, _, truth = run
    allowed = _literal(stripe.Payout, "reconciliation_status")
    records = list(generate(_params(events=3000)))
    listed: dict[str, set[str]] = defaultdict(set)
    at_completion: dict[str, int] = {}
    paid_at: dict[str, int] = {}
    at_paid: dict[str, int] = {}
    for r in records:
        if isinstance(r, TxnRecord) and r.payout:
            listed[r.payout].add(r.id)
        elif isinstance(r, EventRecord) and r.object_type == "payout":
            po = json.loads(r.object_json)
            assert po["reconciliation_status"] in allowed
            if r.type == "payout.created":
                assert po["reconciliation_status"] == ("in_progress" if po["automatic"] else "not_applicable")
            if r.type == "payout.paid":
                paid_at[po["id"]] = r.created
                if po["automatic"]:
                    at_paid[po["id"]] = len(listed[po["id"]])
                assert po["reconciliation_status"] != "completed"
            if r.type == "payout.reconciliation_completed":
                assert po["automatic"] and po["id"] in paid_at and r.created >= paid_at[po["id"]]
                at_completion[po["id"]] = len(listed[po["id"]])
    assert at_completion
    truth_payouts = {t["id"]: t for t in truth if t["kind"] == "payout"}
    assert {p["reconciliation_status"] for p in truth_payouts.values() if p["automatic"] and p["status"] == "paid"} \
        == {"completed"}
    # before completion only part of the members was listed (the own payout transaction and the older half)
    for payout_id, count in at_paid.items():
        assert count < len(listed[payout_id]), payout_id
    assert set(at_paid) == set(at_completion)


def test_manual_payouts_have_no_members_and_take_the_balance(run: Run) -> None:
    _, txns, truth = run
    payouts = [t for t in truth if t["kind"] == "payout"]
    manual = [p for p in payouts if not p["automatic"]]
    assert manual and {p["method"] for p in manual} == {"standard", "instant"}
    for p in manual:
        assert p["members"] is None and p["sum_of_nets"] is None and p["reconciliation_status"] == "not_applicable"
    assert not any(t.payout in {p["id"] for p in manual} for t in txns)
    for p in payouts:
        if p["automatic"]:
            assert p["members"] and p["sum_of_nets"] == p["amount"]
    unpaid = {i for t in truth if t["kind"] == "unpaid" for i in t["balance_transactions"]}
    own = {p["balance_transaction"] for p in manual}
    assert not unpaid & own


def test_draft_invoices_are_deleted_not_voided(run: Run) -> None:
    events, _, truth = run
    deleted = {t["id"] for t in truth if t["kind"] == "deleted"}
    assert deleted and all(t["type"] == "invoice" for t in truth if t["kind"] == "deleted")
    assert not deleted & set(_objects(truth, "invoice"))
    for e in events:
        if e.type == "invoice.deleted":
            assert json.loads(e.object_json)["status"] == "draft" and e.object_id in deleted
        if e.type == "invoice.voided":
            assert json.loads(e.json)["data"]["previous_attributes"]["status"] == "open"


def test_defaults_carry_every_behaviour() -> None:
    types = Counter(r.type for r in generate(ScenarioParams(seed=3, events=20000, start_time=START))
                    if isinstance(r, EventRecord))
    for needed in ("charge.captured", "invoice_payment.paid", "invoice.deleted", "payout.reconciliation_completed",
                   "charge.dispute.funds_reinstated"):
        assert types[needed], needed


def _digest(params: ScenarioParams) -> str:
    h = hashlib.sha256()
    for r in generate(params):
        h.update(r.json.encode())
        if isinstance(r, EventRecord) and r.legacy_fields:
            h.update(r.legacy_fields.encode())
    return h.hexdigest()


def test_the_new_knobs_are_deterministic() -> None:
    params = _params(events=3000, partial_capture_rate=0.7, instant_payout_share=0.7, draft_delete_rate=0.4)
    assert _digest(params) == _digest(params)
    assert _digest(params) != _digest(_params(events=3000, seed=20))
    with pytest.raises(ValueError):
        ScenarioParams(appeal_rate=1.5)
