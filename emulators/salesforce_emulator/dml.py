"""Saving one record the way Salesforce does: insert, update, upsert by external id (or by `Id`).

Input is already split by the wire layer into plain `values` (API name → JSON value or CSV text, None = null)
and `refs` (relationship name → (parent external-id field, value)), e.g. `{"Payout__r": ("Stripe_Payout_Id__c",
"po_1")}`. Every rule comes from the metadata: unknown/read-only fields, types, lengths, restricted picklists,
required fields, unique values, parent look-ups (by external id, or by raw record id — see `lookups.py`), plus the
org mode's validation rules and sharing. Errors come back as `FieldError`s in a `SaveResult`.

No lock spans an insert's duplicate check and its write when `insert_window_ms` is set or the insert gate holds
it: the store lock is released meanwhile (a `Condition` on it), so two writers inserting the same new external id
race as on Salesforce — one wins, the other gets `DUPLICATE_VALUE` naming the winner's id.
"""

from __future__ import annotations

import uuid

import threading
from dataclasses import dataclass, field
from typing import Any

from emulators.salesforce_emulator.faults import Faults
from emulators.salesforce_emulator.lookups import check_raw_lookup, lock_error
from emulators.salesforce_emulator.metadata import ObjectDef
from emulators.salesforce_emulator.org_modes import OrgMode
from emulators.salesforce_emulator.store import Store, Txn
from emulators.salesforce_emulator.values import FieldError, coerce, now_datetime


@dataclass
class SaveResult:
    """One record's outcome, as Salesforce reports it."""

    id: str | None
    success: bool
    created: bool = False
    errors: list[FieldError] = field(default_factory=list)
    event_uuid: str | None = None  # a published platform event message

    def as_json(self, with_created: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "success": self.success,
                               "errors": [{"statusCode": e.code, "message": e.message, "fields": e.fields}
                                          for e in self.errors]}
        if self.event_uuid is not None:
            # "Publish Event Messages with Salesforce APIs": "the OPERATION_ENQUEUED status code is returned for a
            # successful call in the response's error field, in addition to the event UUID" (and no `created`).
            out["errors"] = [{"statusCode": "OPERATION_ENQUEUED", "message": self.event_uuid, "fields": []}]
            return out
        if with_created and self.success:
            out["created"] = self.created
        return out


def _fail(err: FieldError, rid: str | None = None) -> SaveResult:
    return SaveResult(rid, False, False, [err])


def publish_event(dml: "Dml", txn: Txn, obj: ObjectDef, values: dict[str, Any], refs: dict[str, tuple[str, Any]],
                  mode: str) -> SaveResult:
    """Insert = publish ("Publish events by inserting events in the same way that you insert sObjects",
    "Publish Event Messages with Salesforce APIs"); "Only after insert Triggers Are Supported ... because event
    notifications can't be updated. They're only inserted (published)" ("Apex, API, and SOQL Considerations for
    Platform Events"): update and upsert are refused (code and text are the emulator's). "Platform event records
    are validated to ensure that the attributes of their custom fields are enforced" (required, length, precision)."""
    if mode != "insert":
        raise FieldError("INVALID_OPERATION", f"{obj.name}: platform event messages can only be inserted "
                         f"(published), not {mode}d", [])
    changes = dml._changes(obj, {k: v for k, v in values.items()}, refs, True, False)
    missing = [f.name for f in obj.fields.values() if f.required and changes.get(f.name) in (None, "")]
    if missing:
        raise FieldError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
    event_uuid = str(uuid.uuid4())
    rid = dml.store.next_id(obj)
    txn.publish(obj, {**changes, "Id": rid, "EventUuid": event_uuid, "CreatedDate": now_datetime()})
    return SaveResult(rid, True, True, event_uuid=event_uuid)


def track_history(txn: Txn, obj: ObjectDef, rid: str, old: dict[str, Any] | None, changes: dict[str, Any]) -> None:
    """Field history: "created" on insert, one entry per tracked field whose value changed on update
    (`<Object>__History`: ParentId, Field, OldValue, NewValue; "Field History Tracking", Salesforce Help)."""
    stamp = now_datetime()
    if old is None:
        txn.track({"sobject": f"{obj.name[:-3]}__History", "ParentId": rid, "Field": "created", "OldValue": None,
                   "NewValue": None, "CreatedDate": stamp})
        return
    for name, value in changes.items():
        f = obj.fields[name]
        if f.track_history and old.get(name) != value:
            txn.track({"sobject": f"{obj.name[:-3]}__History", "ParentId": rid, "Field": name,
                       "OldValue": old.get(name), "NewValue": value, "CreatedDate": stamp})


class Dml:
    """Applies saves to a `Txn`; the caller holds `store.lock` and commits or rolls back."""

    def __init__(self, store: Store, faults: Faults, org_mode: OrgMode | None = None) -> None:
        self.store, self.faults = store, faults
        self.mode = org_mode or OrgMode()
        self.gate_cond = threading.Condition(store.lock)
        self._local = threading.local()

    def reset_saved(self) -> None:
        """Start counting this thread's saved records (the latency model's per-record cost)."""
        self._local.saved = 0

    def saved(self) -> int:
        return int(getattr(self._local, "saved", 0))

    def save(self, txn: Txn, obj: ObjectDef, values: dict[str, Any], refs: dict[str, tuple[str, Any]],
             mode: str, ext_field: str | None = None, ext_value: Any = None, as_admin: bool = False) -> SaveResult:
        """`mode` is insert, update (values carry `Id`) or upsert (by `ext_field` = `ext_value`); `as_admin` skips
        validation rules and sharing (seeding). The caller holds `store.lock`."""
        try:
            if obj.platform_event:
                result = publish_event(self, txn, obj, values, refs, mode)
            else:
                result = self._save(txn, obj, values, refs, mode, ext_field, ext_value, as_admin)
        except FieldError as err:
            return _fail(err)
        self._local.saved = self.saved() + 1
        return result

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
            if not self.mode.sharing.visible(found):
                # "Status Codes and Error Responses" / StatusCode: a record the user cannot edit is refused
                # with INSUFFICIENT_ACCESS_OR_READONLY.
                raise FieldError("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id", [])
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

    def _changes(self, obj: ObjectDef, values: dict[str, Any], refs: dict[str, tuple[str, Any]],
                 creating: bool, as_admin: bool) -> dict[str, Any]:
        """The coerced field values to write (lookups resolved and checked)."""
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
            if f.type == "Lookup" and changes[f.name] is not None:
                sharing = None if as_admin else self.mode.sharing
                changes[f.name] = check_raw_lookup(self.store, f, changes[f.name], sharing)
        for rel, (parent_field, parent_value) in refs.items():
            lookup = obj.relationship(rel)
            if lookup is None:
                raise FieldError("INVALID_FIELD", f"No such column '{rel}' on sobject of type {obj.name}", [])
            changes[lookup.name] = self._parent_id(lookup.reference_to, parent_field, parent_value)
        return changes

    def _roll_lock(self, obj: ObjectDef, rid: str | None, changes: dict[str, Any]) -> None:
        """Injected lock contention: updates lock their record; inserts lock the parents they look up."""
        locked = rid or next((v for n, v in changes.items() if obj.fields[n].type == "Lookup" and v), None)
        if locked is not None and self.faults.roll_lock():
            raise lock_error(str(locked), self.faults.roll_lock_wrap())

    def _insert_window(self, obj: ObjectDef, changes: dict[str, Any]) -> None:
        """Between an insert's duplicate check and its write, let others write (gate or `insert_window_ms`)."""
        unique = [v for n, v in changes.items() if obj.fields[n].unique and v is not None]
        gate = self.faults.gate
        if any(gate.catches(v) for v in unique):
            gate.waiting += 1
            self.gate_cond.wait_for(gate.released.is_set, timeout=60)
        elif unique and self.faults.knobs.insert_window_ms:
            gate.in_window += 1
            try:
                self.gate_cond.wait(timeout=self.faults.knobs.insert_window_ms / 1000.0)
            finally:
                gate.in_window -= 1

    def _save(self, txn: Txn, obj: ObjectDef, values: dict[str, Any], refs: dict[str, tuple[str, Any]],
              mode: str, ext_field: str | None, ext_value: Any, as_admin: bool) -> SaveResult:
        rid, values = self._target(obj, values, mode, ext_field, ext_value)
        creating = rid is None
        changes = self._changes(obj, values, refs, creating, as_admin)
        self._roll_lock(obj, rid, changes)
        if creating:
            self._insert_window(obj, changes)
            rec = self._new_record(obj)
            rid = self.store.next_id(obj)
            rec["Id"] = rid
        else:
            assert rid is not None
            rec = dict(self.store.records[obj.name][rid])
        rec.update(changes)
        rec["LastModifiedDate"] = rec["SystemModstamp"] = now_datetime()
        missing = [f.name for f in obj.fields.values() if f.required and rec.get(f.name) in (None, "")]
        if missing:
            raise FieldError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        for rule in [] if as_admin else self.mode.rules_for(obj.name):
            if rule.rejects(rec):
                raise FieldError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [rule.error_field])
        self._check_unique(obj, rid, changes)
        if obj.history:
            track_history(txn, obj, rid, None if creating else self.store.records[obj.name].get(rid), changes)
        txn.put(obj, rid, rec)
        return SaveResult(rid, True, creating)

    def _check_unique(self, obj: ObjectDef, rid: str, changes: dict[str, Any]) -> None:
        for name in changes:
            f = obj.fields[name]
            if f.unique and changes[name] is not None:
                other = self.store.find_unique(obj, name, changes[name])
                if other is not None and other != rid:
                    raise FieldError("DUPLICATE_VALUE", f"duplicate value found: {name} duplicates value on record "
                                     f"with id: {other}", [])

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
