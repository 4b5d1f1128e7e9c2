"""SOQL subset and value coercion, driven in-process through the store (no HTTP)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from emulators.salesforce_emulator.dml import Dml
from emulators.salesforce_emulator.faults import Faults, Knobs
from emulators.salesforce_emulator.metadata import load_schema
from emulators.salesforce_emulator.query import run
from emulators.salesforce_emulator.soql import SoqlError, parse
from emulators.salesforce_emulator.store import Store
from emulators.salesforce_emulator.values import FieldError, coerce
from emulators.salesforce_emulator.wire import dumps
from paysync.paths import SALESFORCE_METADATA_DIR

SCHEMA = load_schema(SALESFORCE_METADATA_DIR)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "org.sqlite3", SCHEMA)
    dml = Dml(store, Faults(Knobs()))
    txn = store.txn()
    payout = SCHEMA.objects["Stripe_Payout__c"]
    payment = SCHEMA.objects["Stripe_Payment__c"]
    assert dml.save(txn, payout, {"Status__c": "Paid"}, {}, "upsert", "Stripe_Payout_Id__c", "po_1").success
    rows = [("ch_a", "10.50", "USD", "Succeeded", "po_1"), ("ch_b", "1000", "JPY", "Failed", None),
            ("ch_c", "1.234", "BHD", None, "po_1"), ("ch_d", None, "usd", "Refunded", None)]
    for charge, amount, cur, status, po in rows:
        refs = {"Payout__r": ("Stripe_Payout_Id__c", po)} if po else {}
        values = {"Amount__c": amount, "Currency__c": cur, "Status__c": status}
        assert dml.save(txn, payment, values, refs, "upsert", "Stripe_Charge_Id__c", charge).success
    txn.commit()
    return store


def _ids(store: Store, soql: str) -> list[str]:
    _, rows = run(store, parse(SCHEMA, soql), "59.0")
    return [r["Stripe_Charge_Id__c"] for r in rows]


@pytest.mark.parametrize(("where", "expected"), [
    ("Amount__c > 10", ["ch_a", "ch_b"]),
    ("Amount__c <= 10.5", ["ch_a", "ch_c"]),
    ("Currency__c = 'USD'", ["ch_a", "ch_d"]),  # case-insensitive text
    ("Currency__c != 'USD'", ["ch_b", "ch_c"]),
    ("Status__c = null", ["ch_c"]),
    ("Amount__c != null AND (Status__c IN ('Failed', 'Refunded') OR Currency__c LIKE 'B%')", ["ch_b", "ch_c"]),
    ("Status__c NOT IN ('Succeeded')", ["ch_b", "ch_c", "ch_d"]),
    ("Payout__r.Stripe_Payout_Id__c = 'po_1' AND Livemode__c = false", ["ch_a", "ch_c"]),
    ("NOT Stripe_Charge_Id__c LIKE 'ch\\_a'", ["ch_b", "ch_c", "ch_d"]),
    ("Stripe_Charge_Id__c = 'CH_A'", []),  # external ids are case-sensitive
])
def test_where(store: Store, where: str, expected: list[str]) -> None:
    assert _ids(store, f"SELECT Stripe_Charge_Id__c FROM Stripe_Payment__c WHERE {where} "
                       "ORDER BY Stripe_Charge_Id__c") == expected


def test_order_limit_offset_count_and_parent_projection(store: Store) -> None:
    assert _ids(store, "SELECT Stripe_Charge_Id__c FROM Stripe_Payment__c ORDER BY Amount__c DESC NULLS LAST "
                       "LIMIT 2 OFFSET 1") == ["ch_a", "ch_c"]
    total, rows = run(store, parse(SCHEMA, "select count() from stripe_payment__c where amount__c > 1"), "59.0")
    assert (total, rows) == (3, [])
    _, rows = run(store, parse(SCHEMA, "SELECT Amount__c, Payout__r.Status__c FROM Stripe_Payment__c "
                                       "ORDER BY Stripe_Charge_Id__c"), "59.0")
    assert rows[0]["Payout__r"]["Status__c"] == "Paid" and rows[1]["Payout__r"] is None
    assert b'"Amount__c": 1.234' in dumps(rows[2]) and b'"Amount__c": 1000,' in dumps(rows[1])


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Nope__c FROM Stripe_Payment__c", "INVALID_FIELD"),
    ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ("SELECT Id FROM Stripe_Payment__c WHERE", "MALFORMED_QUERY"),
    ("SELECT Id FROM Stripe_Payment__c WHERE Bad__r.Name = 'x'", "INVALID_FIELD"),
])
def test_query_errors(soql: str, code: str) -> None:
    with pytest.raises(SoqlError) as err:
        parse(SCHEMA, soql)
    assert err.value.code == code


def test_value_coercion() -> None:
    pay = SCHEMA.objects["Stripe_Payment__c"]
    assert coerce(pay.fields["Amount__c"], "10.50") == Decimal("10.500")
    assert coerce(pay.fields["Amount__c"], Decimal("0.1")) == Decimal("0.100")
    assert coerce(pay.fields["Exchange_Rate__c"], "1.123456789") == Decimal("1.123456789")
    assert coerce(pay.fields["Paid_At__c"], "2026-01-02T03:04:05+0100") == "2026-01-02T02:04:05.000+0000"
    assert coerce(pay.fields["Livemode__c"], "true") is True
    with pytest.raises(FieldError) as big:
        coerce(pay.fields["Amount__c"], "1" * 16)
    assert big.value.code == "NUMBER_OUTSIDE_VALID_RANGE"
    with pytest.raises(FieldError) as bad:
        coerce(pay.fields["Paid_At__c"], "yesterday")
    assert bad.value.code == "INVALID_TYPE_ON_FIELD_IN_RECORD"
