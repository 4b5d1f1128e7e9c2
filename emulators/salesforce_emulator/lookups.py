"""Checks on lookups given as raw record ids, and the lock errors of contended parents.

A lookup field set to a Salesforce id (`Opportunity__c = "006…"`, not through `Opportunity__r` by external id) must
name an existing record of the field's object that the user can see; otherwise the whole record fails:
- an id of another object (wrong key prefix) → `FIELD_INTEGRITY_EXCEPTION` "…: id value of incorrect type: …";
- an id of the right object that does not exist (never did, or deleted) → `INVALID_CROSS_REFERENCE_KEY`
  "invalid cross reference id";
- a record the user cannot see (private sharing) → `INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY`
  "insufficient access rights on cross-reference id".
(A malformed id is `MALFORMED_ID`, raised by `values.coerce`.) The codes are Salesforce's `StatusCode` values
("Status Codes and Error Responses"; the messages are those real orgs send — the docs list codes, not texts.)
"""

from __future__ import annotations

from typing import Protocol

from emulators.salesforce_emulator.metadata import FieldDef
from emulators.salesforce_emulator.store import Store
from emulators.salesforce_emulator.values import FieldError


class Visibility(Protocol):
    def visible(self, record_id: str) -> bool: ...


def check_raw_lookup(store: Store, f: FieldDef, value: str, sharing: Visibility | None) -> str:
    """The 18-character id `value` if it names a visible `f.reference_to` record; raises `FieldError` otherwise."""
    rid = Store.normalize_id(value)
    parent = store.schema.objects.get(f.reference_to)
    if parent is None or not rid.startswith(parent.key_prefix):
        raise FieldError("FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {value}", [f.name])
    if rid not in store.records[parent.name]:
        raise FieldError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
    if sharing is not None and not sharing.visible(rid):
        raise FieldError("INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
                         f"insufficient access rights on cross-reference id: {value}", [f.name])
    return rid


def lock_error(record_id: str, wrapped: bool) -> FieldError:
    """`UNABLE_TO_LOCK_ROW` on `record_id`; `wrapped` = as a trigger's failed DML reports it, inside
    `CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY` with the lock message in the text."""
    inner = f"unable to obtain exclusive access to this record or 1 records: {record_id}"
    if not wrapped:
        return FieldError("UNABLE_TO_LOCK_ROW", inner, [])
    return FieldError("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                      "StripeRollupTrigger: execution of AfterInsert caused by: System.DmlException: Update failed. "
                      f"First exception on row 0 with id {record_id}; first error: UNABLE_TO_LOCK_ROW, {inner}: []",
                      [])
