"""Records in memory for speed, persisted to SQLite (one row per record, JSON data) so they survive a restart.

All access goes through one `Store` guarded by its `lock`; DML opens a `Txn`, which records undo images so an
`allOrNone` batch rolls back, and `commit()` writes the touched rows in one SQLite transaction.
Unique fields (external ids) are indexed: case-sensitive ones by exact value, others by lower case.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from emulators.salesforce_emulator.metadata import ObjectDef, Schema
from emulators.salesforce_emulator.values import from_storage, to_storage

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def id18(id15: str) -> str:
    """Salesforce's 18-character form: the 15-char id plus a 3-char case checksum."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _SUFFIX[bits]
    return id15 + suffix


def make_id(prefix: str, n: int) -> str:
    digits = ""
    while n:
        n, r = divmod(n, 62)
        digits = _B62[r] + digits
    return id18(prefix + "5g0" + digits.rjust(9, "0"))


class Store:
    """The org's data: `records[sobject][id] -> {field: stored value}`."""

    def __init__(self, path: Path, schema: Schema) -> None:
        self.schema = schema
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in schema.objects}
        self._unique: dict[tuple[str, str], dict[str, str]] = {}
        self._counters: dict[str, int] = {}
        self.published: list[dict[str, Any]] = []  # platform event messages, in publish order (in memory)
        self.history: list[dict[str, Any]] = []  # field history entries (`<Object>__History` rows), in memory
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, sobject TEXT NOT NULL, data TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._load()

    def _load(self) -> None:
        self._counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        for rid, sobject, data in self._db.execute("SELECT id, sobject, data FROM records"):
            obj = self.schema.objects.get(sobject)
            if obj is None:
                continue
            raw = json.loads(data)
            rec = {k: from_storage(obj.fields[k], v) for k, v in raw.items() if k in obj.fields}
            self.records[sobject][rid] = rec
            self._index(obj, rid, rec)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # --- indexes -------------------------------------------------------------------------------------------
    def _key(self, obj: ObjectDef, field: str, value: Any) -> str:
        return str(value) if obj.fields[field].case_sensitive else str(value).lower()

    def _index(self, obj: ObjectDef, rid: str, rec: dict[str, Any]) -> None:
        for name, f in obj.fields.items():
            if f.unique and name != "Id" and rec.get(name) is not None:
                self._unique.setdefault((obj.name, name), {})[self._key(obj, name, rec[name])] = rid

    def _unindex(self, obj: ObjectDef, rec: dict[str, Any]) -> None:
        for name, f in obj.fields.items():
            if f.unique and name != "Id" and rec.get(name) is not None:
                self._unique.get((obj.name, name), {}).pop(self._key(obj, name, rec[name]), None)

    def find_unique(self, obj: ObjectDef, field: str, value: Any) -> str | None:
        """The id of the record whose unique `field` equals `value` (case rules of the field), or None."""
        if field == "Id":
            rid = self.normalize_id(str(value))
            return rid if rid in self.records[obj.name] else None
        return self._unique.get((obj.name, field), {}).get(self._key(obj, field, value))

    @staticmethod
    def normalize_id(value: str) -> str:
        return id18(value) if len(value) == 15 else value

    def get(self, obj: ObjectDef, rid: str) -> dict[str, Any] | None:
        return self.records[obj.name].get(self.normalize_id(rid))

    # --- writes --------------------------------------------------------------------------------------------
    def next_id(self, obj: ObjectDef) -> str:
        n = self._counters.get("id:" + obj.key_prefix, 0) + 1
        self._counters["id:" + obj.key_prefix] = n
        return make_id(obj.key_prefix, n)

    def next_auto_number(self, obj: ObjectDef) -> str:
        n = self._counters.get("auto:" + obj.name, 0) + 1
        self._counters["auto:" + obj.name] = n
        fmt = obj.auto_number_format
        start, end = fmt.find("{"), fmt.find("}")
        width = end - start - 1 if start >= 0 < end else 0
        return fmt[:start] + str(n).rjust(width, "0") + fmt[end + 1:] if width else f"{fmt}{n}"

    def txn(self) -> "Txn":
        return Txn(self)

    def _put(self, obj: ObjectDef, rid: str, rec: dict[str, Any] | None) -> None:
        old = self.records[obj.name].get(rid)
        if old is not None:
            self._unindex(obj, old)
        if rec is None:
            self.records[obj.name].pop(rid, None)
        else:
            self.records[obj.name][rid] = rec
            self._index(obj, rid, rec)

    def _persist(self, touched: dict[str, str]) -> None:
        rows, gone = [], []
        for rid, sobject in touched.items():
            rec = self.records[sobject].get(rid)
            if rec is None:
                gone.append((rid,))
            else:
                rows.append((rid, sobject, json.dumps({k: to_storage(v) for k, v in rec.items()})))
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO records (id, sobject, data) VALUES (?, ?, ?)", rows)
            self._db.executemany("DELETE FROM records WHERE id = ?", gone)
            self._db.executemany("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                                 list(self._counters.items()))
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise


class Txn:
    """Changes to the store with undo images; `commit()` persists, `rollback()` restores memory."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._undo: dict[str, tuple[ObjectDef, dict[str, Any] | None]] = {}
        self._events: list[dict[str, Any]] = []
        self._history: list[dict[str, Any]] = []

    def track(self, entry: dict[str, Any]) -> None:
        """A field history entry, kept at `commit()`."""
        self._history.append(entry)

    def publish(self, obj: ObjectDef, message: dict[str, Any]) -> None:
        """Queue a platform event message; it is published at `commit()` and dropped at `rollback()`.

        "Publish After Commit to have the event message published only after a transaction commits successfully"
        ("Platform Event Fields", Platform Events Developer Guide; the package's event is PublishAfterCommit)."""
        self._events.append({"sobject": obj.name, **message})

    def put(self, obj: ObjectDef, rid: str, rec: dict[str, Any]) -> None:
        if rid not in self._undo:
            old = self.store.records[obj.name].get(rid)
            self._undo[rid] = (obj, dict(old) if old is not None else None)
        self.store._put(obj, rid, rec)

    def delete(self, obj: ObjectDef, rid: str) -> None:
        if rid not in self._undo:
            old = self.store.records[obj.name].get(rid)
            self._undo[rid] = (obj, dict(old) if old is not None else None)
        self.store._put(obj, rid, None)

    def savepoint(self) -> dict[str, tuple[ObjectDef, dict[str, Any] | None]]:
        return dict(self._undo)

    def rollback(self) -> None:
        for rid, (obj, old) in self._undo.items():
            self.store._put(obj, rid, old)
        self._undo.clear()
        self._events.clear()
        self._history.clear()

    def commit(self) -> None:
        if self._undo:
            self.store._persist({rid: obj.name for rid, (obj, _) in self._undo.items()})
        self._undo.clear()
        for message in self._events:
            message["ReplayId"] = str(len(self.store.published) + 1)
            self.store.published.append(message)
        self._events.clear()
        self.store.history.extend(self._history)
        self._history.clear()
