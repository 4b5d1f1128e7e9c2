"""Saving one record the way Salesforce does: insert, update, upsert by external id (or by `Id`).

Input is already split by the wire layer into plain `values` (API name → JSON value or CSV text, None = null)
and `refs` (relationship name → (parent external-id field, value)), e.g. `{"Payout__r": ("Stripe_Payout_Id__c",
"po_1")}`. Every rule comes from the metadata: unknown/read-only fields, types, lengths, restricted picklists,
required fields, unique values, parent look-ups. Errors come back as `FieldError`s in a `SaveResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulators.salesforce_emulator.faults import Faults
from emulators.salesforce_emulator.metadata import ObjectDef
from emulators.salesforce_emulator.store import Store, Txn
from emulators.salesforce_emulator.values import FieldError, coerce, now_datetime


@dataclass
class SaveResult:
    """One record's outcome, as Salesforce reports it."""

    id: str | None
    success: bool
    created: bool = False
    errors: list[FieldError] = field(default_factory=list)

    def as_json(self, with_created: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "success": self.success,
                               "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}
                                          for e in self.errors]}
        if with_created and self.success:
            out["created"] = self.created
        return out


def _fail(err: FieldError, rid: str | None = None) -> SaveResult:
    return SaveResult(rid, False, False, [err])


class Dml:
    """Applies saves to a `Txn`; the caller holds `store.lock` and commits or rolls back."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store, self.faults = store, faults

    def save(self, txn: Txn, obj: ObjectDef, values: dict[str, Any], refs: dict[str, tuple[str, Any]],
             mode: str, ext_field: str | None = None, ext_value: Any = None) -> SaveResult:
        """`mode` is insert, update (values carry `Id`) or upsert (by `ext_field` = `ext_value`)."""
        try:
            return self._save(txn, obj, values, refs, mode, ext_field, ext_value)
        except FieldError as err:
            return _fail(err)

    def _target(self, obj: ObjectDef, values: dict[str, Any], mode: str, ext_field: str | None,
                ext_value: Any) -> tuple[str | None, dict[str, Any]]:
        """(existing id or None, values without the key fields)."""
        values = dict(values)
        if mode == "insert":
            if any(k.lower() == "id" for k in values):
                raise FieldError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
            return None, values
        if mode == "update":
            key = next((k for k in values if k.lower() == "id"), None)
            rid = values.pop(key) if key else None
            if not rid:
                raise FieldError("MISSING_ARGUMENT", "Id not specified in an update call", [])
            found = self.store.find_unique(obj, "Id", str(rid))
            if found is None:
                raise FieldError("NOT_FOUND", f"The requested resource does not exist: {rid}", ["Id"])
            return found, values
        f = obj.field(ext_field or "")
        if f is None or not (f.external_id or f.name == "Id"):
            raise FieldError("INVALID_FIELD", f"Field name provided, {ext_field} is not an External ID or indexed "
                             f"field for {obj.name}", [])
        for key in [k for k in values if k.lower() == f.name.lower()]:
            if ext_value is not None and str(values[key]) != str(ext_value):
                raise FieldError("INVALID_FIELD", f"{f.name}: value in the record does not match the external id "
                                 f"of the request", [f.name])
            ext_value = values.pop(key)
        if ext_value is None or ext_value == "":
            raise FieldError("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
        rid = self.store.find_unique(obj, f.name, ext_value)
        if f.name == "Id":
            if rid is None:
                raise FieldError("NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                                 f"{ext_value}", ["Id"])
            return rid, values
        if rid is None:
            values[f.name] = ext_value
        return rid, values

    def _save(self, txn: Txn, obj: ObjectDef, values: dict[str, Any], refs: dict[str, tuple[str, Any]],
              mode: str, ext_field: str | None, ext_value: Any) -> SaveResult:
        rid, values = self._target(obj, values, mode, ext_field, ext_value)
        creating = rid is None
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            f = obj.field(key)
            if f is None:
                raise FieldError("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [])
            if not (f.createable if creating else f.updateable) and not (creating and f.external_id):
                raise FieldError("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {f.name}. "
                                 "Please check the security settings of this field and verify that it is read/write "
                                 "for your profile or permission set.", [f.name])
            changes[f.name] = coerce(f, raw)
        for rel, (parent_field, parent_value) in refs.items():
            lookup = obj.relationship(rel)
            if lookup is None:
                raise FieldError("INVALID_FIELD", f"No such column '{rel}' on sobject of type {obj.name}", [])
            changes[lookup.name] = self._parent_id(lookup.reference_to, parent_field, parent_value)
        if rid is not None and self.faults.roll_lock():
            raise FieldError("UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record or 1 records: "
                             f"{rid}", [])
        if creating:
            rec = self._new_record(obj)
            rid = self.store.next_id(obj)
            rec["Id"] = rid
        else:
            rec = dict(self.store.records[obj.name][rid])
        rec.update(changes)
        rec["LastModifiedDate"] = rec["SystemModstamp"] = now_datetime()
        missing = [f.name for f in obj.fields.values() if f.required and rec.get(f.name) in (None, "")]
        if missing:
            raise FieldError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        for name in changes:
            f = obj.fields[name]
            if f.unique and changes[name] is not None:
                other = self.store.find_unique(obj, name, changes[name])
                if other is not None and other != rid:
                    raise FieldError("DUPLICATE_VALUE", f"duplicate value found: {name} duplicates value on record "
                                     f"with id: {other}", [])
        txn.put(obj, rid, rec)
        return SaveResult(rid, True, creating)

    def _new_record(self, obj: ObjectDef) -> dict[str, Any]:
        rec: dict[str, Any] = {name: f.default for name, f in obj.fields.items() if f.default is not None}
        now = now_datetime()
        rec["CreatedDate"] = now
        if obj.auto_number_format:
            rec["Name"] = self.store.next_auto_number(obj)
        if obj.name == "Order":
            rec["OrderNumber"] = str(self.store._counters.get("id:801", 0) + 1).rjust(8, "0")
        return rec

    def _parent_id(self, parent_name: str, parent_field: str, value: Any) -> str | None:
        parent = self.store.schema.objects[parent_name]
        if value is None:
            return None
        f = parent.field(parent_field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise FieldError("INVALID_FIELD", f"Field name provided, {parent_field} is not an External ID or indexed "
                             f"field for {parent_name}", [])
        pid = self.store.find_unique(parent, f.name, value)
        if pid is None:
            raise FieldError("INVALID_FIELD", f"Foreign key external ID: {value} not found for field {f.name} in "
                             f"entity {parent_name}", [])
        return pid
