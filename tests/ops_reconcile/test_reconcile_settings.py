"""`paysync reconcile`, the demo and the chaos invariants expect what the stream worker writes under the same
`PAYSYNC_MAPPING_*` settings; a balance transaction is expected exactly as the pollers publish it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.config import MappingConfig
from core.types.balance_transaction import map_balance_transaction
from ops.chaos import invariants
from ops.demo import run_reconcile
from ops.reconcile import engine, expected, main
from paysync.paths import REPO_ROOT
from producers.balance_records import balance_record
from streams.ports import RealMapper
from streams.settings import StreamSettings

OBJECTS = REPO_ROOT / "tests" / "fixtures" / "stripe" / "stripe-openapi" / "objects"
Key = tuple[str, str]


def _truth() -> list[dict[str, Any]]:
    lines = []
    for object_type in ("customer", "charge", "balance_transaction"):
        obj = json.loads((OBJECTS / f"{object_type}.json").read_text(encoding="utf-8"))
        lines.append({"kind": "object", "type": object_type, "account": "", "object": obj})
    return lines


class WorkerWrittenSalesforce:
    """A Salesforce reader holding what the stream worker, with this process's settings, wrote for `truth`."""

    def __init__(self, truth: list[dict[str, Any]]) -> None:
        worker_cfg = RealMapper(StreamSettings().mapping).cfg
        self.rows, _ = expected.expected_records(truth, worker_cfg)
        self.calls = 0

    def field_names(self, sobject: str) -> set[str]:
        """Every field the worker wrote on `sobject` (a relationship `Rel__r.X` as its lookup `Rel__c`)."""
        names = {f for key, row in self.rows.items() if key[0] == sobject for f in row}
        return {f.split(".", 1)[0][:-3] + "__c" if "__r." in f else f for f in names}

    def records(self, sobject: str, fields: set[str]) -> dict[Key, dict[str, Any]]:
        self.calls += 1
        return {key: dict(row) for key, row in self.rows.items() if key[0] == sobject}


@pytest.fixture
def contact_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_MAPPING_CUSTOMER_TARGET", "Contact")


def test_reconcile_command_follows_the_mapping_settings(
    contact_mode: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    truth = _truth()
    salesforce = WorkerWrittenSalesforce(truth)
    assert ("Contact", "cus_QXg1o8vcGmoR32") in salesforce.rows  # the worker writes Contacts in this mode
    monkeypatch.setattr(engine, "salesforce_reader", lambda settings: salesforce)
    truth_file = tmp_path / "truth.jsonl"
    truth_file.write_text("".join(json.dumps(line) + "\n" for line in truth), encoding="utf-8")
    status = main(["--truth-file", str(truth_file), "--json", "--no-progress"])
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["clean"], report["drifts"]
    assert status == 0


def test_demo_and_chaos_reconcile_with_the_workers_mapping(contact_mode: None) -> None:
    truth = _truth()
    salesforce = WorkerWrittenSalesforce(truth)
    pipeline = SimpleNamespace(stripe=SimpleNamespace(truth=lambda: truth), salesforce_reader=lambda: salesforce)
    report = run_reconcile(pipeline)  # type: ignore[arg-type]
    assert report["summary"]["clean"], report["drifts"]
    assert invariants._mapping_config() == RealMapper(StreamSettings().mapping).cfg
    assert invariants._mapping_config().customer_target == "Contact"


@pytest.mark.parametrize("rate", [Decimal("1.0856"), 1.0856, Decimal("0.0000012345"), None])
def test_expected_balance_transaction_is_what_the_poller_publishes(rate: Any) -> None:
    # docs.stripe.com, "The Balance Transaction object": "`exchange_rate` (float, nullable) The exchange rate
    # used for this transaction, if applicable." The pollers parse Stripe's JSON with parse_float=Decimal, so
    # the rate keeps the digits Stripe sent; reconcile must build the very same record (one builder for both).
    txn = json.loads((OBJECTS / "balance_transaction.json").read_text(encoding="utf-8"))
    txn["exchange_rate"] = rate
    cfg = MappingConfig()
    _, published = balance_record(txn, json.dumps(txn, default=str), source="poll", account=None, api_version="",
                                  received_at_ms=0)
    written = {u["sobject"]: u["fields"] for u in map_balance_transaction(published, cfg)}
    rows, _ = expected.expected_records([{"kind": "object", "type": "balance_transaction", "account": "",
                                          "object": txn}], cfg)
    row = rows[("Stripe_Balance_Transaction__c", txn["id"])]
    assert row["Exchange_Rate__c"] == written["Stripe_Balance_Transaction__c"]["Exchange_Rate__c"]
    assert rows[("Stripe_Payment__c", txn["source"])]["Exchange_Rate__c"] == written["Stripe_Payment__c"]["Exchange_Rate__c"]
    assert row["Exchange_Rate__c"] == (None if rate is None else format(Decimal(str(rate)), "f"))
