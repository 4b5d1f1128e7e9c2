"""No Opportunity/Order payment status goes back to an older one, live or replayed (`paysync replay salesforce.upserts`).

Every writer of `Stripe_Payment_Status__c` also writes `Stripe_Payment_Status_Version__c`, the order guard's
version of the Stripe snapshot it came from (`core.version`: `created:rank:event id`, ordered by
`decode_version`, i.e. event time first). Before a batch is written, `guard` reads the current versions of the
batch's Opportunity/Order records with one SOQL query per object (chunks of `IDS_PER_QUERY` ids) and drops every
status write that is not newer. Cost: at most ⌈n/IDS_PER_QUERY⌉ query calls per object type per batch that holds
status writes (usually one or two calls); batches without them cost nothing. The sink partitions by record key,
so one writer handles a record and nothing writes between the read and the write but this sink.

A status write without a version (upserts produced before versions existed, replayed) is older than any
versioned one; over a record without a version it is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from core.version import Version, decode_version
from paysync.outcomes import Outcome
from sinks.client import CallError
from sinks.records import PendingRecord

STATUS_FIELD = "Stripe_Payment_Status__c"
VERSION_FIELD = "Stripe_Payment_Status_Version__c"
GUARDED_OBJECTS = ("Opportunity", "Order")
IDS_PER_QUERY = 200  # keeps the GET query URL far below its limit (200 × 21 characters)
_SFID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


class Querier(Protocol):
    def query(self, soql: str) -> list[dict[str, Any]]: ...


def _version(text: Any) -> Version | None:
    """The decoded version, None when absent or not one (an unversioned write)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return decode_version(text)
    except ValueError:
        return None


def is_status_write(r: PendingRecord) -> bool:
    """A write of an Opportunity/Order payment status by Id."""
    return r.sobject in GUARDED_OBJECTS and r.external_id_field == "Id" and STATUS_FIELD in r.fields


def keep_newer_status(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """`later`'s fields merged over `earlier`'s, except a status that is older than `earlier`'s (for in-batch merges)."""
    merged = {**earlier, **later}
    old, new = _version(earlier.get(VERSION_FIELD)), _version(later.get(VERSION_FIELD))
    if STATUS_FIELD in earlier and STATUS_FIELD in later and old is not None and (new is None or new <= old):
        merged[STATUS_FIELD], merged[VERSION_FIELD] = earlier[STATUS_FIELD], earlier[VERSION_FIELD]
    return merged


def _current_versions(client: Querier, sobject: str, ids: list[str]) -> dict[str, Version | None]:
    """15-character id -> the record's current version (None: none yet), for the records that exist."""
    out: dict[str, Version | None] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start:start + IDS_PER_QUERY]
        quoted = ",".join(f"'{i}'" for i in chunk)
        rows = client.query(f"SELECT Id, {VERSION_FIELD} FROM {sobject} WHERE Id IN ({quoted})")
        for row in rows:
            out[str(row.get("Id"))[:15]] = _version(row.get(VERSION_FIELD))
    return out


def _is_older(r: PendingRecord, current: dict[str, Version | None]) -> bool:
    key = r.external_id[:15]
    if key not in current:
        return False  # not readable here: the write itself reports what is wrong
    applied, candidate = current[key], _version(r.fields.get(VERSION_FIELD))
    if applied is None:
        return False
    return candidate is None or candidate <= applied


def guard(client: Querier, records: Sequence[PendingRecord]
          ) -> tuple[list[PendingRecord], list[PendingRecord], list[PendingRecord]]:
    """(records to write, stale status writes to drop as done, status writes to retry: the read failed)."""
    if not callable(getattr(client, "query", None)):  # a client without SOQL (test fakes): nothing to read
        return list(records), [], []
    keep: list[PendingRecord] = [r for r in records if not is_status_write(r)]
    stale: list[PendingRecord] = []
    retry: list[PendingRecord] = []
    for sobject in GUARDED_OBJECTS:
        group = [r for r in records if is_status_write(r) and r.sobject == sobject]
        ids = sorted({r.external_id for r in group if _SFID.fullmatch(r.external_id)})
        if not group:
            continue
        try:
            current = _current_versions(client, sobject, ids) if ids else {}
        except CallError as exc:
            if exc.decision.outcome in (Outcome.RETRY, Outcome.REAUTH, Outcome.PAUSE):
                retry.extend(group)
            else:
                keep.extend(group)  # e.g. no such field or object in this org: the write decides and reports
            continue
        for r in group:
            (stale if _is_older(r, current) else keep).append(r)
    return keep, stale, retry
