"""Refusals: records Salesforce refused and paysync recorded as `Stripe_Sync_Error__c` rows.

An org can refuse a record paysync sends (a validation rule, a field an admin made required, a sharing rule,
a feature that is off). The sink dead-letters such a record with its origin and writes a sync-error row naming
the record's external id (`Object_Id__c`). Reconcile reads the open rows and sets every drift of a record that
has one apart: that difference is explained and recorded, not lost; a drift with no row is unexplained.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from ops.reconcile.compare import Drift

# Rows an operator has not closed yet (`paysync dlq replay` marks them Replayed, a resolve marks them Resolved).
OPEN_STATUSES = ("New",)


class SoqlReader(Protocol):
    """What reading refusals needs of `SalesforceReader`."""

    def query(self, soql: str) -> Any: ...


@dataclass
class Refusal:
    """One refused record: its drifts and the error codes of its open sync-error rows."""

    sobject: str
    external_id: str
    codes: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sobject": self.sobject, "external_id": self.external_id, "codes": sorted(self.codes),
                "message": self.messages[0] if self.messages else None,
                "drifts": [d.as_dict() for d in self.drifts]}


def open_sync_errors(reader: SoqlReader) -> dict[str, list[tuple[str, str]]]:
    """External id -> [(error code, message)] of every open `Stripe_Sync_Error__c` row."""
    statuses = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    soql = f"SELECT Object_Id__c, Error_Code__c, Message__c FROM Stripe_Sync_Error__c WHERE Status__c IN ({statuses})"
    rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in reader.query(soql):
        if row.get("Object_Id__c"):
            rows[str(row["Object_Id__c"])].append((str(row.get("Error_Code__c") or ""), str(row.get("Message__c") or "")))
    return dict(rows)


def split_refused(drifts: list[Drift], errors: dict[str, list[tuple[str, str]]]) -> tuple[list[Drift], list[Refusal]]:
    """(unexplained drifts, refusals): a missing/stale/mismatched record with an open sync-error row is a refusal.

    An extra record is never explained by a refusal (paysync did not write it from Stripe).
    """
    unexplained: list[Drift] = []
    refused: dict[tuple[str, str], Refusal] = {}
    for drift in drifts:
        rows = errors.get(drift.external_id)
        if drift.kind == "extra" or not rows:
            unexplained.append(drift)
            continue
        key = (drift.sobject, drift.external_id)
        refusal = refused.get(key)
        if refusal is None:
            refusal = refused[key] = Refusal(drift.sobject, drift.external_id)
            for code, message in rows:
                refusal.codes.add(code)
                refusal.messages.append(message)
        refusal.drifts.append(drift)
    return unexplained, [refused[k] for k in sorted(refused)]
