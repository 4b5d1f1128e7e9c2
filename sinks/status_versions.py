"""No versioned payment status goes back to an older one, live or replayed (`paysync replay salesforce.upserts`).

Two statuses are versioned (`sinks.records.STATUS_FIELDS`): the Opportunity/Order `Stripe_Payment_Status__c`
(every writer also writes `Stripe_Payment_Status_Version__c`, the order guard's `created:rank:event id`,
`core.version`) and `Stripe_Payment__c.Status__c` (the charge and its dispute's outcome also write
`Status_Version__c`, `phase/created:rank`, `core.version.encode_payment_status_version`). Before a batch is
written, `guard` reads the current versions of the batch's records that carry such a status, with one SOQL query
per object (chunks of `IDS_PER_QUERY` ids), and takes out every status that is older (an equal version is the same
Stripe state: written again, it heals a hand edit): an Opportunity/Order
write (nothing but the status) is dropped; a Stripe_Payment__c write loses the status pair and keeps its other
fields (dropped too when nothing but identity fields remain). Cost: at most ⌈n/IDS_PER_QUERY⌉ query calls per
object type per batch that holds status writes (usually one or two calls); batches without them cost nothing.
The sink partitions by record key, so one writer handles a record and nothing writes between the read and the
write but this sink.

A status write without a version (upserts produced before versions existed, replayed) is older than any
versioned one; over a record without a version it is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from paysync.outcomes import Outcome
from sinks.client import CallError
from sinks.records import STATUS_FIELDS, PendingRecord, is_older

GUARDED_OBJECTS = tuple(STATUS_FIELDS)
# Each guarded object's key: the field its writes name the record by, and the ids a SOQL literal may hold.
KEYS: dict[str, tuple[str, re.Pattern[str]]] = {
    "Opportunity": ("Id", re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")),
    "Order": ("Id", re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")),
    "Stripe_Payment__c": ("Stripe_Charge_Id__c", re.compile(r"[A-Za-z0-9_]{1,255}")),
}
IDS_PER_QUERY = 200  # keeps the GET query URL far below its limit (200 × 30 characters)
# Fields any mapping may write on a record it does not own (`core.common.identity_fields`): a payment write left
# with nothing else once its stale status is taken out changes nothing.
IDENTITY_FIELDS = frozenset({"Stripe_Account_Id__c", "Livemode__c", "Legal_Entity__c"})


class Querier(Protocol):
    def query(self, soql: str) -> list[dict[str, Any]]: ...


def is_status_write(r: PendingRecord) -> bool:
    """A write of a versioned status, naming its record by the guarded object's key field."""
    spec, key = STATUS_FIELDS.get(r.sobject), KEYS.get(r.sobject)
    return spec is not None and key is not None and r.external_id_field == key[0] and spec[0] in r.fields


def _match_key(sobject: str, value: Any) -> str:
    """How a record is matched between the batch and the query rows (15-character Ids: Salesforce may answer 18)."""
    text = str(value)
    return text[:15] if KEYS[sobject][0] == "Id" else text


def _current_versions(client: Querier, sobject: str, ids: list[str]) -> dict[str, Any]:
    """Record key -> the record's current version text (None: none yet), for the records that exist."""
    key_field, version_field = KEYS[sobject][0], STATUS_FIELDS[sobject][1]
    out: dict[str, Any] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start:start + IDS_PER_QUERY]
        quoted = ",".join(f"'{i}'" for i in chunk)
        rows = client.query(f"SELECT {key_field}, {version_field} FROM {sobject} WHERE {key_field} IN ({quoted})")
        for row in rows:
            out[_match_key(sobject, row.get(key_field))] = row.get(version_field)
    return out


def _take_out_status(r: PendingRecord) -> bool:
    """Remove the stale status pair from a Stripe_Payment__c write; True when the rest is still worth writing."""
    status_field, version_field, _ = STATUS_FIELDS[r.sobject]
    r.fields.pop(status_field, None)
    r.fields.pop(version_field, None)
    return bool(r.parents) or any(name not in IDENTITY_FIELDS for name in r.fields)


def _settle(group: list[PendingRecord], current: dict[str, Any],
            keep: list[PendingRecord], stale: list[PendingRecord]) -> None:
    """Each write of `group` to `keep` or `stale` against the `current` versions (stale payment fields kept)."""
    for r in group:
        key = _match_key(r.sobject, r.external_id)
        version_field = STATUS_FIELDS[r.sobject][1]
        # a record not read here does not exist yet (or is not readable): the write itself reports what is wrong
        if key not in current or not is_older(r.sobject, r.fields.get(version_field), current[key]):
            keep.append(r)
        elif r.sobject == "Stripe_Payment__c" and _take_out_status(r):
            keep.append(r)
        else:
            stale.append(r)


def guard(client: Querier, records: Sequence[PendingRecord], known: Mapping[str, Mapping[str, str | None]] | None = None
          ) -> tuple[list[PendingRecord], list[PendingRecord], list[PendingRecord]]:
    """(records to write, stale status writes to drop as done, status writes to retry: the read failed).

    `known`: object -> {record key -> current version} already read for this batch (`StatusEvents.versions`);
    an object whose writes are all in it costs no query."""
    if not callable(getattr(client, "query", None)):  # a client without SOQL (test fakes): nothing to read
        return list(records), [], []
    keep: list[PendingRecord] = [r for r in records if not is_status_write(r)]
    stale: list[PendingRecord] = []
    retry: list[PendingRecord] = []
    for sobject in GUARDED_OBJECTS:
        group = [r for r in records if is_status_write(r) and r.sobject == sobject]
        if not group:
            continue
        ids = sorted({r.external_id for r in group if KEYS[sobject][1].fullmatch(r.external_id)})
        read = (known or {}).get(sobject, {})
        if ids and all(i in read for i in ids):
            _settle(group, {_match_key(sobject, i): read[i] for i in ids}, keep, stale)
            continue
        try:
            current = _current_versions(client, sobject, ids) if ids else {}
        except CallError as exc:
            if exc.decision.outcome in (Outcome.RETRY, Outcome.REAUTH, Outcome.PAUSE):
                retry.extend(group)
            else:
                keep.extend(group)  # e.g. no such field or object in this org: the write decides and reports
            continue
        _settle(group, current, keep, stale)
    return keep, stale, retry
