"""Request bodies for the two write paths and the parsing of Bulk results (pure functions).

- sObject Collections: `{"allOrNone": false, "records": [{"attributes": {"type": …}, …}]}`; a parent
  becomes `"Account__r": {"attributes": {"type": "Account"}, "Stripe_Customer_Id__c": "cus_1"}`.
- Bulk API 2.0 CSV: a parent becomes a column `Account__r.Stripe_Customer_Id__c`; null is `#N/A`,
  an empty cell leaves the field unchanged (used for columns a record does not carry), booleans are
  `true`/`false`, decimals are sent exactly as given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from sinks.records import FieldValue, PendingRecord

BULK_NULL = "#N/A"

# Required fields a stub parent needs besides its external id.
STUB_REQUIRED: dict[str, tuple[str, ...]] = {"Account": ("Name",), "Contact": ("LastName",)}


def collection_record(record: PendingRecord) -> dict[str, Any]:
    """One record of a Collections upsert body."""
    out: dict[str, Any] = {"attributes": {"type": record.sobject}}
    out.update({name: value for name, value in record.fields.items() if name != record.external_id_field})
    for rel, parent in record.parents.items():
        out[rel] = {"attributes": {"type": parent.sobject}, parent.external_id_field: parent.external_id}
    out[record.external_id_field] = record.external_id
    return out


ID_FIELD = "Id"


def update_record(record: PendingRecord) -> dict[str, Any]:
    """One record of a Collections update body (addressed by its Salesforce id, as in Salesforce's example)."""
    out = collection_record(record)
    out.pop(ID_FIELD, None)
    out["id"] = record.external_id
    return out


def update_body(records: Sequence[PendingRecord]) -> dict[str, Any]:
    """A Collections update body (`PATCH /composite/sobjects`), allOrNone false."""
    return {"allOrNone": False, "records": [update_record(r) for r in records]}


def collection_body(records: Sequence[PendingRecord]) -> dict[str, Any]:
    """A Collections upsert/create body, allOrNone false (one bad record does not sink the others)."""
    return {"allOrNone": False, "records": [collection_record(r) for r in records]}


def stub_record(sobject: str, external_id_field: str, external_id: str) -> dict[str, Any] | None:
    """A minimal insert-only parent, or None when the parent cannot be stubbed (addressed by Id)."""
    if external_id_field == "Id":
        return None
    out: dict[str, Any] = {"attributes": {"type": sobject}, external_id_field: external_id}
    for name in STUB_REQUIRED.get(sobject, ()):
        out[name] = external_id
    return out


def _csv_value(value: FieldValue) -> str:
    if value is None or value == "":
        return BULK_NULL
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def bulk_columns(records: Iterable[PendingRecord]) -> list[str]:
    """The header shared by `records` (all of one object and one external id field): external id first."""
    seen: dict[str, None] = {}
    ext_field = ""
    for r in records:
        ext_field = r.external_id_field
        for name in r.fields:
            if name != r.external_id_field:
                seen.setdefault(name, None)
        for rel, parent in r.parents.items():
            seen.setdefault(f"{rel}.{parent.external_id_field}", None)
    return [ext_field, *sorted(seen)]


def bulk_csv(records: Sequence[PendingRecord]) -> str:
    """The CSV upload of one Bulk upsert job; a column a record lacks is empty (left unchanged)."""
    columns = bulk_columns(records)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for r in records:
        row: list[str] = [r.external_id]
        for col in columns[1:]:
            if "." in col:
                rel = col.split(".", 1)[0]
                parent = r.parents.get(rel)
                row.append(parent.external_id if parent else "")
            elif col in r.fields:
                row.append(_csv_value(r.fields[col]))
            else:
                row.append("")
        writer.writerow(row)
    return buf.getvalue()


def parse_csv(text: str) -> list[dict[str, str]]:
    """Rows of a Bulk results CSV as dicts (empty text → no rows)."""
    if not text or not text.strip():
        return []
    return list(csv.DictReader(io.StringIO(text)))
