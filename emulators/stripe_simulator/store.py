"""The account's state and event log in SQLite: events as JSON rows (never a dict per event in memory),
the latest snapshot of every object, balance transactions with their payout membership, delivery status.

One connection shared by threads under a lock; the generator writes in batches.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import EventRecord, TxnRecord
from .thin import thin_id

PLATFORM = ""  # the platform's own rows have account ""
_CONNECTED_BY = {"account.application.authorized": 1, "account.application.deauthorized": 0}  # `connect.py`
# the `application` an `account.application.*` event carries is the platform's, not an object of the account
_NOT_STORED_OBJECTS = frozenset({"application"})
DELIVERY_NONE, DELIVERY_PENDING, DELIVERY_OK, DELIVERY_FAILED, DELIVERY_DROPPED = 0, 1, 2, 3, 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, type TEXT, created INTEGER,
  account TEXT, body TEXT, delivery INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS events_acct_created ON events(account, created);
CREATE INDEX IF NOT EXISTS events_acct_seq ON events(account, seq);
CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, type TEXT, account TEXT, created INTEGER, seq INTEGER,
  body TEXT);
CREATE INDEX IF NOT EXISTS objects_type ON objects(account, type, seq);
CREATE TABLE IF NOT EXISTS txns (id TEXT PRIMARY KEY, seq INTEGER, created INTEGER, type TEXT, account TEXT,
  currency TEXT, source TEXT, payout TEXT, net INTEGER, body TEXT, paid_out_by TEXT);
CREATE TABLE IF NOT EXISTS deleted (id TEXT PRIMARY KEY, type TEXT, account TEXT, seq INTEGER);
CREATE INDEX IF NOT EXISTS txns_acct_seq ON txns(account, seq);
CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, seq INTEGER, created INTEGER, body TEXT, connected INTEGER);
CREATE TABLE IF NOT EXISTS v2_events (id TEXT PRIMARY KEY, account TEXT, body TEXT);
CREATE INDEX IF NOT EXISTS txns_payout ON txns(payout);
"""


@dataclass
class Page:
    """One page of a list: JSON bodies newest first, and whether more exist beyond it."""

    bodies: list[str]
    has_more: bool


class Store:
    """SQLite-backed state. `path=None` keeps it in a temporary file SQLite manages (memory-bounded)."""

    def __init__(self, path: Path | None = None) -> None:
        self._db = sqlite3.connect(str(path) if path else "", check_same_thread=False, isolation_level=None)
        self._db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;" + _SCHEMA)
        self._lock = threading.Lock()
        self._seq = 0
        self.revoked: set[str] = set()  # connected accounts that deauthorized the platform (`connect.py`)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # -- writing ------------------------------------------------------------------------------------------
    def write(self, records: Iterable[EventRecord | TxnRecord], delivery: int = DELIVERY_NONE) -> None:
        """Store a batch of generator records in one transaction."""
        events, txns = [], []
        objects: list[tuple[Any, ...]] = []  # upserts and deletions, in stream order
        accounts: list[tuple[Any, ...]] = []
        thin: list[tuple[str, str, str]] = []
        with self._lock:
            for r in records:
                self._seq += 1
                acct = r.account or PLATFORM
                if isinstance(r, EventRecord):
                    events.append((self._seq, r.id, r.type, r.created, acct, r.json, delivery))
                    if r.thin_fetched_json is not None:
                        thin.append((thin_id(r.id), acct, r.thin_fetched_json))
                    if r.account_json is not None:
                        accounts.append((acct, self._seq, r.created, r.account_json, _CONNECTED_BY[r.type]))
                    if r.object_type in _NOT_STORED_OBJECTS:
                        continue
                    objects.append((r.object_id, r.object_type, acct, r.created, self._seq, r.object_json,
                                    r.type.endswith(".deleted")))
                else:
                    txns.append((r.id, self._seq, r.created, r.type, acct, r.currency, r.source, r.payout, r.net,
                                 r.json, r.paid_out_by))
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?)", events)
            upserts: list[tuple[Any, ...]] = []
            for row in objects:
                if not row[6]:
                    upserts.append(row[:6])
                    continue
                # `*.deleted`: gone from retrieve and list (404 resource_missing), kept for the truth
                self._upsert_objects(upserts)
                upserts = []
                self._db.execute("DELETE FROM objects WHERE id=?", (row[0],))
                self._db.execute("INSERT OR REPLACE INTO deleted VALUES (?,?,?,?)", (row[0], row[1], row[2], row[4]))
            self._upsert_objects(upserts)
            self._db.executemany(
                "INSERT INTO txns VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                "payout=coalesce(excluded.payout, txns.payout), "
                "paid_out_by=coalesce(excluded.paid_out_by, txns.paid_out_by), body=excluded.body", txns)
            self._db.executemany("INSERT OR REPLACE INTO v2_events VALUES (?,?,?)", thin)
            self._db.executemany("INSERT INTO accounts VALUES (?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
                                 "connected=excluded.connected", accounts)
            self._db.execute("COMMIT")
            for account_id, *_, connected in accounts:
                (self.revoked.discard if connected else self.revoked.add)(account_id)

    def add_thin_events(self, rows: list[tuple[str, str, str]]) -> None:
        """Thin events made for event destinations only: (id, account, fetched JSON) for `/v2/core/events/{id}`."""
        if rows:
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO v2_events VALUES (?,?,?)", rows)

    def add_accounts(self, rows: Iterable[tuple[str, int, str]]) -> None:
        """Connected accounts that exist before a run: (id, created, account JSON), listed from now on."""
        with self._lock:
            for account_id, created, body in rows:
                self._seq += 1
                self._db.execute("INSERT OR IGNORE INTO accounts VALUES (?,?,?,?,1)",
                                 (account_id, self._seq, created, body))

    def _upsert_objects(self, rows: list[tuple[Any, ...]]) -> None:
        self._db.executemany(
            "INSERT INTO objects VALUES (?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET body=excluded.body", rows)

    def set_delivery(self, event_id: str, status: int) -> None:
        """Record an event's webhook delivery status."""
        with self._lock:
            self._db.execute("UPDATE events SET delivery=? WHERE id=?", (status, event_id))

    # -- reading ------------------------------------------------------------------------------------------
    def _page(self, table: str, where: list[str], args: list[Any], limit: int, starting_after: str | None,
              ending_before: str | None, column: str = "body") -> Page | None:
        with self._lock:
            for cursor, op in ((starting_after, "<"), (ending_before, ">")):
                if cursor is None:
                    continue
                row = self._db.execute(f"SELECT seq FROM {table} WHERE id=?", (cursor,)).fetchone()
                if row is None:
                    return None
                where = [*where, f"seq {op} ?"]
                args = [*args, row[0]]
            clause = " AND ".join(where) or "1"
            order = "ASC" if ending_before and not starting_after else "DESC"
            rows = self._db.execute(f"SELECT {column} FROM {table} WHERE {clause} ORDER BY seq {order} LIMIT ?",
                                    [*args, limit + 1]).fetchall()
        bodies = [r[0] for r in rows[:limit]]
        if order == "ASC":
            bodies.reverse()
        return Page(bodies, len(rows) > limit)

    def list_events(self, account: str, *, types: list[str], created: dict[str, int], delivery_success: bool | None,
                    limit: int, starting_after: str | None, ending_before: str | None) -> Page | None:
        """Events newest first (None when a cursor id is unknown)."""
        where, args = ["account = ?"], list[str | int]([account])
        if types:
            parts = []
            for t in types:
                parts.append("type LIKE ?" if "*" in t else "type = ?")
                args.append(t.replace("*", "%"))
            where.append("(" + " OR ".join(parts) + ")")
        only_lower = all(op in (">", ">=") for op in created)
        for op, value in created.items():
            # a lower bound only: walk (account, seq) newest first and stop at the page size, instead of
            # sorting every event since the bound on each page (`+` keeps SQLite off the created index)
            where.append(f"{'+' if only_lower else ''}created {op} ?")
            args.append(value)
        if delivery_success is True:
            where.append(f"delivery = {DELIVERY_OK}")
        elif delivery_success is False:
            where.append(f"delivery IN ({DELIVERY_PENDING},{DELIVERY_FAILED})")
        return self._page("events", where, args, limit, starting_after, ending_before)

    def list_txns(self, account: str, *, payout: str | None, txn_type: str | None, created: dict[str, int],
                  limit: int, starting_after: str | None, ending_before: str | None) -> Page | None:
        """Balance transactions newest first."""
        where, args = ["account = ?"], list[str | int]([account])
        if payout is not None:
            where.append("payout = ?")
            args.append(payout)
        if txn_type is not None:
            where.append("type = ?")
            args.append(txn_type)
        for op, value in created.items():
            where.append(f"created {op} ?")
            args.append(value)
        return self._page("txns", where, args, limit, starting_after, ending_before)

    def list_objects(self, account: str, object_type: str, *, created: dict[str, int], limit: int,
                     starting_after: str | None, ending_before: str | None,
                     fields: dict[str, str] | None = None) -> Page | None:
        """Objects of one type, newest first; `fields`: top-level string fields the body must have (`invoice=`)."""
        where, args = ["account = ?", "type = ?"], list[str | int]([account, object_type])
        for name, wanted in (fields or {}).items():
            where.append(f"json_extract(body, '$.{name}') = ?")
            args.append(wanted)
        for op, value in created.items():
            where.append(f"created {op} ?")
            args.append(value)
        return self._page("objects", where, args, limit, starting_after, ending_before)

    def list_accounts(self, limit: int, starting_after: str | None, ending_before: str | None) -> Page | None:
        """The connected accounts (deauthorized ones left out), newest first."""
        return self._page("accounts", ["connected = 1"], [], limit, starting_after, ending_before)

    def get_account(self, account_id: str) -> str | None:
        """A connected account's JSON (None when unknown or deauthorized)."""
        with self._lock:
            row = self._db.execute("SELECT body FROM accounts WHERE id=? AND connected=1", (account_id,)).fetchone()
        return row[0] if row else None

    def get(self, table: str, object_id: str, account: str, object_type: str | None = None) -> str | None:
        """One object's (or event's, or transaction's) JSON, or None."""
        sql = f"SELECT body FROM {table} WHERE id=? AND account=?" + (" AND type=?" if object_type else "")
        args = (object_id, account, object_type) if object_type else (object_id, account)
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        with self._lock:
            return {t: self._db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "objects", "txns")}

    def connected_accounts(self) -> list[str]:
        """Ids of the connected accounts that have events (the platform excluded), sorted."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT account FROM events WHERE account != ?", (PLATFORM,)).fetchall()
        return sorted(r[0] for r in rows)

    def iter_objects(self) -> Iterator[tuple[str, str, str]]:
        """(type, account, body) of every object, by type then age (a snapshot taken under the lock)."""
        with self._lock:
            rows = self._db.execute("SELECT type, account, body FROM objects ORDER BY type, seq").fetchall()
        yield from rows

    def iter_txns(self) -> Iterator[tuple[str, str]]:
        """(account, body) of every balance transaction, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT account, body FROM txns ORDER BY seq").fetchall()
        yield from rows

    def iter_payout_members(self) -> Iterator[tuple[str, str, str, str, int]]:
        """(payout, account, txn id, txn type, net) for every transaction that belongs to a payout."""
        with self._lock:
            rows = self._db.execute(
                "SELECT payout, account, id, type, net FROM txns WHERE payout IS NOT NULL ORDER BY payout, seq"
            ).fetchall()
        yield from rows

    def iter_unpaid(self) -> Iterator[tuple[str, str, str, int, str]]:
        """(account, currency, txn id, net, body) of transactions in no payout, automatic or manual."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account, currency, id, net, body FROM txns WHERE payout IS NULL AND paid_out_by IS NULL "
                "ORDER BY account, seq").fetchall()
        yield from rows

    def iter_manual_paid(self) -> Iterator[tuple[str, str]]:
        """(manual payout id, txn id) of every transaction a manual payout took (the payout's own one included)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT paid_out_by, id FROM txns WHERE paid_out_by IS NOT NULL ORDER BY paid_out_by, seq").fetchall()
        yield from rows

    def iter_deleted(self) -> Iterator[tuple[str, str, str]]:
        """(type, account, id) of every deleted object, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT type, account, id FROM deleted ORDER BY seq").fetchall()
        yield from rows
