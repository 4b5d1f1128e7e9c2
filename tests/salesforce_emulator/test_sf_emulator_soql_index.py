"""SOQL filters on an external id (or Id) read the store's unique index, with the same answers as a full scan.

Salesforce, "Indexes": "External IDs cause an index to be created on that field." The sink's status read
(`sinks.status_events`) asks `WHERE <external id> IN (200 ids)` per batch; a scan of every row per query made the
emulator, not the sink, the bottleneck of the replay benchmark (issue 16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulators.salesforce_emulator import query
from emulators.salesforce_emulator.dml import Dml
from emulators.salesforce_emulator.faults import Faults, Knobs
from emulators.salesforce_emulator.metadata import load_schema
from emulators.salesforce_emulator.soql import Cond, SoqlError, parse
from emulators.salesforce_emulator.store import Store
from paysync.paths import SALESFORCE_METADATA_DIR

SCHEMA = load_schema(SALESFORCE_METADATA_DIR)
PAYMENTS = 300


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("org") / "org.sqlite3", SCHEMA)
    dml = Dml(store, Faults(Knobs()))
    txn = store.txn()
    payment = SCHEMA.objects["Stripe_Payment__c"]
    for n in range(PAYMENTS):
        status = ("Succeeded", "Failed", "Refunded")[n % 3]
        values = {"Amount__c": str(100 + n), "Currency__c": "USD", "Status__c": status}
        assert dml.save(txn, payment, values, {}, "upsert", "Stripe_Charge_Id__c", f"ch_{n:04d}").success
    txn.commit()
    return store


def _rows(store: Store, soql: str) -> list[dict[str, Any]]:
    return query.run(store, parse(SCHEMA, soql), "59.0")[1]


def _some_id(store: Store, charge: str) -> str:
    [row] = _rows(store, f"SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = '{charge}'")
    return str(row["Id"])


WHERES = [
    "Stripe_Charge_Id__c IN ('ch_0001', 'ch_0002', 'ch_0002', 'ch_9999')",
    "Stripe_Charge_Id__c = 'ch_0007'",
    "Stripe_Charge_Id__c IN ('CH_0001', 'ch_0003')",  # external ids are case-sensitive here (caseSensitive=true)
    "Stripe_Charge_Id__c IN ('ch_0001', 'ch_0002', 'ch_0003') AND Status__c = 'Failed'",
    "Status__c = 'Refunded' AND Stripe_Charge_Id__c IN ('ch_0002', 'ch_0005', 'ch_0006')",
    "Stripe_Charge_Id__c IN ('ch_0001') OR Amount__c > 390",  # OR: not answered by the index
    "Stripe_Charge_Id__c NOT IN ('ch_0001')",
    "Stripe_Charge_Id__c IN ('nope')",
]


@pytest.mark.parametrize("where", WHERES)
def test_the_index_answers_as_a_scan_does(store: Store, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    soql = f"SELECT Id, Stripe_Charge_Id__c, Status__c FROM Stripe_Payment__c WHERE {where}"
    indexed = _rows(store, soql)
    monkeypatch.setattr(query, "_indexed", lambda cond: None)  # every query scans
    scanned = _rows(store, soql)
    assert sorted(map(str, indexed)) == sorted(map(str, scanned))


def test_an_id_filter_with_15_character_ids_reads_the_index(store: Store) -> None:
    rid = _some_id(store, "ch_0042")
    rows = _rows(store, f"SELECT Stripe_Charge_Id__c FROM Stripe_Payment__c WHERE Id IN ('{rid[:15]}', '{rid}')")
    assert [r["Stripe_Charge_Id__c"] for r in rows] == ["ch_0042"]


def test_an_indexed_filter_evaluates_only_the_candidates(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real = query.matches

    def counting(st: Store, rec: dict[str, Any], cond: Cond) -> bool:
        seen.append(rec)
        return real(st, rec, cond)

    monkeypatch.setattr(query, "matches", counting)
    rows = _rows(store, "SELECT Stripe_Charge_Id__c FROM Stripe_Payment__c "
                        "WHERE Stripe_Charge_Id__c IN ('ch_0010', 'ch_0020', 'ch_0030')")
    assert [r["Stripe_Charge_Id__c"] for r in rows] == ["ch_0010", "ch_0020", "ch_0030"]
    assert len([rec for rec in seen if rec]) == 3  # not all PAYMENTS rows (the empty one checks the literals)


def test_a_literal_of_the_wrong_type_is_refused_even_without_candidates(store: Store) -> None:
    with pytest.raises(SoqlError):
        _rows(store, "SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c IN ('nope') AND Amount__c = 'abc'")
