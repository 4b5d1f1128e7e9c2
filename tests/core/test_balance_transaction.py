"""balance_transaction -> Stripe_Balance_Transaction__c and the partial upsert of its source (fee, net, payout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.common import MappingError
from core.config import MappingConfig
from core.types.balance_transaction import map_balance_transaction

CFG = MappingConfig()


def bt_record(txn: dict[str, Any], **over: Any) -> dict[str, Any]:
    """A paysync.StripeBalanceTransaction record built from a real Stripe balance transaction object."""
    source = txn.get("source")
    rec = {
        "id": txn["id"], "source_id": source if isinstance(source, str) else (source or {}).get("id"),
        "payout_id": None, "payout_transaction_count": None, "account": None, "livemode": bool(txn.get("livemode")),
        "type": txn["type"], "reporting_category": txn.get("reporting_category"), "amount": txn["amount"],
        "fee": txn["fee"], "net": txn["net"], "currency": txn["currency"],
        "exchange_rate": None if txn.get("exchange_rate") is None else repr(txn["exchange_rate"]),
        "available_on": txn["available_on"], "created": txn["created"], "status": txn["status"],
        "source": "poll", "api_version": None, "received_at": 1_700_000_000_000, "raw": json.dumps(txn),
    }
    rec.update(over)
    return rec


def _load(stripe_fixtures: Path, rel: str) -> dict[str, Any]:
    return json.loads((stripe_fixtures / rel).read_text(encoding="utf-8"))


def test_charge_transaction_fills_fee_net_and_payout(stripe_fixtures: Path, check: Any, codec: Any) -> None:
    txn = _load(stripe_fixtures, "dj-stripe/balance_transaction_txn_fake_ch_fakefakefakefakefake0001.json")
    rec = bt_record(txn, payout_id="po_1", exchange_rate="1.0850003")
    codec.encode("paysync.StripeBalanceTransaction", rec)  # our helper builds a real record
    upserts = map_balance_transaction(rec, CFG)
    check(upserts)
    assert [u["sobject"] for u in upserts] == ["Stripe_Balance_Transaction__c", "Stripe_Payment__c"]
    own, payment = upserts
    assert own["external_id"] == txn["id"]
    assert (txn["amount"], own["fields"]["Amount__c"]) == (2000, "20.00")
    assert (txn["fee"], own["fields"]["Fee__c"]) == (88, "0.88")
    assert own["fields"]["Exchange_Rate__c"] == "1.0850003"
    assert {p["relationship"]: p["external_id"] for p in own["parents"]} == {"Payout__r": "po_1", "Payment__r": txn["source"]}
    assert payment["external_id"] == txn["source"]
    assert set(payment["fields"]) == {"Stripe_Account_Id__c", "Livemode__c", "Fee__c", "Net__c",
                                      "Balance_Transaction_Id__c", "Settlement_Currency__c", "Exchange_Rate__c",
                                      "Paid_At__c"}
    assert payment["fields"]["Balance_Transaction_Id__c"] == txn["id"]
    assert payment["parents"] == [{"relationship": "Payout__r", "sobject": "Stripe_Payout__c",
                                   "external_id_field": "Stripe_Payout_Id__c", "external_id": "po_1"}]


def test_float_exchange_rate_from_stripe_json_is_read_exactly(stripe_fixtures: Path) -> None:
    txn = _load(stripe_fixtures, "stripe-openapi/objects/balance_transaction.json")
    rec = bt_record(txn, exchange_rate=repr(0.1 + 0.2))  # 0.30000000000000004: kept, never re-rounded
    assert map_balance_transaction(rec, CFG)[0]["fields"]["Exchange_Rate__c"] == "0.30000000000000004"
    with pytest.raises(MappingError) as info:
        map_balance_transaction(bt_record(txn, exchange_rate="NaN"), CFG)
    assert info.value.code == "BAD_DECIMAL"


def test_dispute_withdrawal_sets_fee_reinstatement_returns_it(stripe_fixtures: Path, check: Any) -> None:
    """Issue 19 (2): the fee given back on a won dispute is shown (Dispute_Fee_Returned__c), from the real payload."""
    dispute = _load(stripe_fixtures, "dj-stripe/dispute_dp_funds_reinstated_full.json")
    withdrawal, reversal = dispute["balance_transactions"][:2]
    out = map_balance_transaction(bt_record(withdrawal, source_id=dispute["id"]), CFG)
    check(out)
    assert [u["sobject"] for u in out] == ["Stripe_Balance_Transaction__c", "Stripe_Dispute__c"]
    assert out[1]["fields"]["Dispute_Fee__c"] == "15.00" and out[1]["external_id"] == dispute["id"]
    out = map_balance_transaction(bt_record(reversal, source_id=dispute["id"]), CFG)
    check(out)
    assert [u["sobject"] for u in out] == ["Stripe_Balance_Transaction__c", "Stripe_Dispute__c"]
    assert out[0]["parents"][0]["relationship"] == "Dispute__r"
    assert out[1]["fields"]["Dispute_Fee_Returned__c"] == "15.00"  # fee -1500 on the dispute_reversal
    assert out[1]["fields"]["Amount_Reinstated__c"] == "10.00"
    assert "Dispute_Fee__c" not in out[1]["fields"]  # the withdrawal's fee stays as it was


def test_refund_and_payout_transactions(stripe_fixtures: Path, check: Any) -> None:
    txn = _load(stripe_fixtures, "stripe-openapi/objects/balance_transaction.json")
    refund = bt_record(txn, id="txn_r", type="refund", source_id="re_1", amount=-500, fee=0, net=-500, currency="jpy")
    out = map_balance_transaction(refund, CFG)
    check(out)
    assert out[1]["sobject"] == "Stripe_Refund__c" and out[1]["fields"]["Net__c"] == "-500"
    payout = bt_record(txn, id="txn_p", type="payout", source_id="po_9", amount=-1234, fee=0, net=-1234, currency="kwd")
    out = map_balance_transaction(payout, CFG)
    check(out)
    assert len(out) == 1 and out[0]["fields"]["Net__c"] == "-1.234"
    assert out[0]["parents"] == [{"relationship": "Payout__r", "sobject": "Stripe_Payout__c",
                                  "external_id_field": "Stripe_Payout_Id__c", "external_id": "po_9"}]


@pytest.mark.parametrize(("change", "code"), [({"amount": 1.5}, "BAD_AMOUNT"), ({"currency": "xx"}, "BAD_CURRENCY"),
                                              ({"id": None}, "MISSING_FIELD")])
def test_malformed_transaction(stripe_fixtures: Path, change: dict[str, Any], code: str) -> None:
    txn = _load(stripe_fixtures, "stripe-openapi/objects/balance_transaction.json")
    with pytest.raises(MappingError) as info:
        map_balance_transaction(bt_record(txn, **change), CFG)
    assert info.value.code == code


def test_the_available_copy_the_pending_watch_publishes_outranks_the_pending_one(stripe_fixtures: Path) -> None:
    """Issue 19 point 4: the poller lists a transaction again once available (no payout named); the order guard
    keeps it over the earlier pending copy, and a payout's member copy over both (same `created`, higher rank)."""
    from core.version import decode_version

    txn = _load(stripe_fixtures, "dj-stripe/balance_transaction_txn_fake_ch_fakefakefakefakefake0001.json")
    pending, available = bt_record(txn, status="pending"), bt_record(txn, status="available")
    member = bt_record(txn, status="available", payout_id="po_1", payout_transaction_count=3)
    mapped = [map_balance_transaction(r, CFG)[0] for r in (pending, available, member)]
    versions = [decode_version(u["version"]) for u in mapped]
    assert versions[0] < versions[1] < versions[2]
    assert [u["fields"]["Status__c"] for u in mapped] == ["pending", "available", "available"]
