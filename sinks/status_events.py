"""`Stripe_Payment_Event__e`: one platform event per status change the sink writes (payment, invoice, refund,
dispute, payout), so Flows, Apex triggers and external subscribers can react.

The old status is read, never guessed: `before(records)` reads the current status (and Id, amount, currency) of
the batch's records that carry a status, by external id, as SOQL `query` subrequests of Composite calls (≤ 200
ids per query, ≤ 5 queries per call: "up to 5 of them may be Collections or query calls", `sinks.composite`).
A record not found is new (old status empty). `after(report)` queues, for each landed record whose written
status differs from the one read, an event; queued events are published as Collections inserts (≤ 200 events
each), which is how Salesforce publishes: "Publish events by inserting events in the same way that you insert
sObjects. You can use any Salesforce API" ("Publish Event Messages with Salesforce APIs"). They ride in the free
heavy slots of the next batch's read calls (a Composite call holds ≤ 5 Collections or query subrequests), so a
steady flow costs two calls a batch (read + events of the batch before, write) instead of three; what finds no
room is published on its own once its oldest event has waited `max_age_s` (`publish_due`), and at stop. Every call
goes through `SalesforceClient`, so it is counted in the budget. A batch's read calls (and publish calls) run
concurrently on the sink's pool, as its writes do (`sink_concurrency`); queued events are sent oldest first.

Limits: a record whose read failed is not written in this flush (the caller requeues it) — a write without its
read could not tell its change. A crash between a record's write and its event's publication loses that event
(the replayed write then reads the new status), and so does a call that fails as a whole: events are at most once,
never guessed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sinks.client import CallError, SalesforceClient
from sinks.records import STATUS_FIELDS, PendingRecord

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")

EVENT_OBJECT = "Stripe_Payment_Event__e"
# object → (status field, amount field); currency is Currency__c on all of them (docs/data-model.md)
STATUS_OBJECTS: dict[str, tuple[str, str]] = {
    "Stripe_Payment__c": ("Status__c", "Amount__c"),
    "Stripe_Invoice__c": ("Status__c", "Total__c"),
    "Stripe_Refund__c": ("Status__c", "Amount__c"),
    "Stripe_Dispute__c": ("Status__c", "Amount__c"),
    "Stripe_Payout__c": ("Status__c", "Amount__c"),
}
IDS_PER_QUERY = 200  # keeps the GET query URL far below the URI limits; a query answers ≤ 2,000 rows per page
HEAVY_PER_CALL = 5
PER_COLLECTION = 200


@dataclass(frozen=True)
class Prior:
    """What Salesforce held before the write (all None: the record did not exist)."""

    record_id: str | None = None
    status: str | None = None
    amount: str | None = None
    currency: str | None = None
    version: str | None = None  # the status version (`sinks.records.STATUS_FIELDS`) of a versioned status


def soql_literal(value: str) -> str:
    """A SOQL string literal ("Quoted String Escape Sequences": backslash and single quote are escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def carries_status(r: PendingRecord) -> bool:
    spec = STATUS_OBJECTS.get(r.sobject)
    return spec is not None and spec[0] in r.fields and r.external_id_field != "Id"


class StatusEvents:
    """Reads old statuses before a write and publishes the changes after it (see the module docstring)."""

    def __init__(self, client: SalesforceClient, pool: ThreadPoolExecutor | None = None) -> None:
        self.client = client
        self.pool = pool  # runs a batch's read (and publish) calls concurrently; None: one after another
        self.prior: dict[str, Prior] = {}  # record key → what was read before its pending write
        self.published = 0
        self.queued: list[dict[str, Any]] = []  # events not yet sent, oldest first
        self.queued_since: float | None = None  # monotonic time the oldest queued event was queued
        self._lock = threading.Lock()  # guards `published` (publish calls run on the pool)

    def _map(self, call: Callable[[_T], _R], items: list[_T]) -> Iterator[_R]:
        """`call` over `items`, on the pool when there is one and more than one item (results in order)."""
        if self.pool is None or len(items) < 2:
            return map(call, items)
        return self.pool.map(call, items)

    # before the write ------------------------------------------------------------------------

    def before(self, records: Sequence[PendingRecord]) -> list[PendingRecord]:
        """Read the old status of every status-bearing record; returns those whose read failed (not to write now)."""
        todo = [r for r in records if carries_status(r)]
        queries: list[tuple[str, list[PendingRecord]]] = []
        by_object: dict[str, list[PendingRecord]] = {}
        for r in todo:
            by_object.setdefault(r.sobject, []).append(r)
        for sobject, group in by_object.items():
            for i in range(0, len(group), IDS_PER_QUERY):
                chunk = group[i:i + IDS_PER_QUERY]
                queries.append((self._soql(sobject, chunk), chunk))
        calls = [queries[start:start + HEAVY_PER_CALL] for start in range(0, len(queries), HEAVY_PER_CALL)]
        riders = self._ride_along([HEAVY_PER_CALL - len(call) for call in calls])
        return [r for part in self._map(self._read_call, list(zip(calls, riders))) for r in part]

    def _ride_along(self, free: list[int]) -> list[list[list[dict[str, Any]]]]:
        """Per read call, the queued events (in collections of ≤ 200) that fill its `free` heavy slots, oldest
        first; they leave the queue (what finds no room stays, with its age)."""
        riders: list[list[list[dict[str, Any]]]] = []
        for slots in free:
            chunks = [self.queued[i * PER_COLLECTION:(i + 1) * PER_COLLECTION] for i in range(slots)]
            chunks = [c for c in chunks if c]
            del self.queued[:sum(len(c) for c in chunks)]
            riders.append(chunks)
        if not self.queued:
            self.queued_since = None
        return riders

    def _soql(self, sobject: str, chunk: list[PendingRecord]) -> str:
        status, amount = STATUS_OBJECTS[sobject]
        ext = chunk[0].external_id_field
        ids = ", ".join(soql_literal(r.external_id) for r in chunk)
        version = f", {STATUS_FIELDS[sobject][1]}" if sobject in STATUS_FIELDS else ""
        return f"SELECT Id, {ext}, {status}, {amount}, Currency__c{version} FROM {sobject} WHERE {ext} IN ({ids})"

    def _read_call(self, call: tuple[list[tuple[str, list[PendingRecord]]], list[list[dict[str, Any]]]]
                   ) -> list[PendingRecord]:
        queries, riders = call
        base = f"/services/data/v{self.client.api_version}"
        subs = [_insert_events(base, f"e{i}", chunk) for i, chunk in enumerate(riders)]
        subs += [{"method": "GET", "url": f"{base}/query?q={_quote(q)}", "referenceId": f"q{i}"}
                 for i, (q, _) in enumerate(queries)]
        try:
            answers = self.client.composite(subs)
        except CallError as exc:
            log.warning("old statuses not read; records wait", extra={"code": exc.decision.code})
            if riders:
                log.error("status events not published", extra={"code": exc.decision.code,
                                                                "events": sum(map(len, riders))})
            return [r for _, chunk in queries for r in chunk]
        self._count_published(answers[:len(riders)])
        unread: list[PendingRecord] = []
        for (_, chunk), answer in zip(queries, answers[len(riders):]):
            body = answer.get("body")
            if int(answer.get("httpStatusCode") or 0) >= 300 or not isinstance(body, dict) or not body.get("done"):
                log.warning("old statuses not read; records wait", extra={"status": answer.get("httpStatusCode")})
                unread += chunk
                continue
            self._remember(chunk, body.get("records") or [])
        return unread

    def _remember(self, chunk: list[PendingRecord], rows: list[dict[str, Any]]) -> None:
        status, amount = STATUS_OBJECTS[chunk[0].sobject]
        ext = chunk[0].external_id_field
        found = {str(row.get(ext)): row for row in rows}
        for r in chunk:
            row = found.get(r.external_id)
            version = STATUS_FIELDS[r.sobject][1] if r.sobject in STATUS_FIELDS else None
            self.prior[r.key] = Prior() if row is None else Prior(
                row.get("Id"), row.get(status), _decimal_text(row.get(amount)), row.get("Currency__c"),
                row.get(version) if version else None)

    def versions(self, records: Sequence[PendingRecord]) -> dict[str, dict[str, str | None]]:
        """object -> {external id -> current status version (None: none, or no such record)} of the `records`
        with a versioned status whose old state `before` read: `sinks.status_versions.guard` takes these instead
        of querying them again (the same read serves both, one call fewer per batch)."""
        out: dict[str, dict[str, str | None]] = {}
        for r in records:
            prior = self.prior.get(r.key)
            if prior is not None and r.sobject in STATUS_FIELDS and carries_status(r):
                out.setdefault(r.sobject, {})[r.external_id] = prior.version
        return out

    # after the write -------------------------------------------------------------------------

    def after(self, landed: Sequence[PendingRecord], done: Sequence[PendingRecord], now: float) -> int:
        """Queue the status changes of `landed` (sent with the next read, or by `publish_due`); forget what was
        read for `done` (landed or dead). → how many were queued."""
        events = [e for r in landed if (e := self._event(r)) is not None]
        for r in done:
            self.prior.pop(r.key, None)
        if events and not self.queued:
            self.queued_since = now
        self.queued += events
        return len(events)

    def publish_due(self, now: float, max_age_s: float, force: bool = False) -> int:
        """Publish the queued events in calls of their own when the oldest has waited `max_age_s` (or `force`:
        at stop); → how many were sent (landed or not)."""
        since = self.queued_since
        if since is None or (not force and now - since < max_age_s):
            return 0
        events, self.queued, self.queued_since = self.queued, [], None
        per_call = PER_COLLECTION * HEAVY_PER_CALL
        list(self._map(self._publish, [events[start:start + per_call] for start in range(0, len(events), per_call)]))
        return len(events)

    def _event(self, r: PendingRecord) -> dict[str, Any] | None:
        prior = self.prior.get(r.key)
        if prior is None or not carries_status(r):
            return None
        status, amount = STATUS_OBJECTS[r.sobject]
        new = r.fields.get(status)
        if new == prior.status:
            return None
        return {"attributes": {"type": EVENT_OBJECT}, "Object__c": r.sobject, "Stripe_Id__c": r.external_id,
                "Old_Status__c": prior.status, "New_Status__c": new,
                "Amount__c": r.fields.get(amount, prior.amount), "Currency__c": r.fields.get("Currency__c", prior.currency),
                "Record_Id__c": prior.record_id or r.salesforce_id, "Stripe_Event_Id__c": r.event_id}

    def _publish(self, events: list[dict[str, Any]]) -> None:
        base = f"/services/data/v{self.client.api_version}"
        subs = [_insert_events(base, f"e{i}", events[i * PER_COLLECTION:(i + 1) * PER_COLLECTION])
                for i in range(-(-len(events) // PER_COLLECTION))]
        try:
            answers = self.client.composite(subs)
        except CallError as exc:
            log.error("status events not published", extra={"code": exc.decision.code, "events": len(events)})
            return
        self._count_published(answers)

    def _count_published(self, answers: list[dict[str, Any]]) -> None:
        """Count the events that landed in these Collections-insert answers; log the refused ones."""
        for answer in answers:
            results = answer.get("body")
            ok = [res for res in results if isinstance(res, dict) and res.get("success")] if isinstance(results, list) else []
            with self._lock:
                self.published += len(ok)
            failed = (len(results) if isinstance(results, list) else PER_COLLECTION) - len(ok)
            if failed:
                log.error("status events refused", extra={"failed": failed, "status": answer.get("httpStatusCode")})


def _insert_events(base: str, ref: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A Collections-insert subrequest of ≤ 200 events."""
    return {"method": "POST", "url": f"{base}/composite/sobjects", "referenceId": ref,
            "body": {"allOrNone": False, "records": events}}


def _decimal_text(value: Any) -> str | None:
    """A number from a JSON answer as decimal text (never a float onward): the shortest repr is the value sent."""
    if value is None or isinstance(value, bool):
        return None
    return str(Decimal(repr(value))) if isinstance(value, float) else str(value)


def _quote(soql: str) -> str:
    from urllib.parse import quote

    return quote(soql, safe="")
