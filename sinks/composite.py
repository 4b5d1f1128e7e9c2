"""Packing upserts of several objects into Composite calls (pure functions).

One `POST /composite` is one API call and runs up to 25 subrequests in order; at most 5 of them may be
sObject Collections calls (≤ 200 records each). So one call can carry 1,000 records in Collections
subrequests plus up to 20 single-record upserts (`PATCH /sobjects/{Object}/{ExtField}/{value}`). Small
object groups travel as single-record subrequests when that saves a call, so a typical second of traffic
(a few hundred records over half a dozen objects) costs one call instead of one per object.

Subrequests keep the groups' order (parents first), so a child in the same call as its parent is written
after it. `waves(calls)` says which calls may run at the same time: only calls that each hold a single
object rank, the same one; every other call waits for the ones before it. Every call is sent with
`collateSubrequests: false` (`SalesforceClient.composite`), so Salesforce keeps that order too.

Records addressed by their Salesforce `Id` (Opportunity/Order payment status) go as a PATCH by id or a Collections
update (`PATCH /composite/sobjects` with `id` in each record), never as an upsert by `Id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sinks.payload import ID_FIELD, collection_body, collection_record, update_body, update_record
from sinks.records import PendingRecord, object_rank

MAX_SUBREQUESTS = 25
MAX_COLLECTIONS = 5


@dataclass(frozen=True)
class Group:
    """The records of one object and external id field (unique keys)."""

    sobject: str
    ext_field: str
    records: list[PendingRecord]


@dataclass
class Sub:
    """One subrequest: a Collections upsert of `records`, or a single-record upsert (`single`)."""

    ref: str
    sobject: str
    ext_field: str
    records: list[PendingRecord]
    single: bool

    def request(self, version: str) -> dict[str, Any]:
        """The subrequest as Salesforce wants it (`url` absolute from `/services/data`)."""
        base = f"/services/data/v{version}"
        if self.ext_field == ID_FIELD:
            return self._update_request(base)
        if self.single:
            r = self.records[0]
            body = collection_record(r)
            body.pop("attributes", None)
            body.pop(self.ext_field, None)
            url = f"{base}/sobjects/{self.sobject}/{self.ext_field}/{quote(r.external_id, safe='')}"
            return {"method": "PATCH", "url": url, "referenceId": self.ref, "body": body}
        return {"method": "PATCH", "url": f"{base}/composite/sobjects/{self.sobject}/{self.ext_field}",
                "referenceId": self.ref, "body": collection_body(self.records)}

    def _update_request(self, base: str) -> dict[str, Any]:
        """Records addressed by Salesforce id are updated, never upserted: a PATCH by id, or a Collections update
        ("Upsert Records Using sObject Collections": "Only external ids are supported. Don't use record ids.")."""
        if self.single:
            r = self.records[0]
            body = update_record(r)
            body.pop("attributes", None)
            body.pop("id", None)
            url = f"{base}/sobjects/{self.sobject}/{quote(r.external_id, safe='')}"
            return {"method": "PATCH", "url": url, "referenceId": self.ref, "body": body}
        return {"method": "PATCH", "url": f"{base}/composite/sobjects", "referenceId": self.ref,
                "body": update_body(self.records)}


def _chunks(n: int, size: int) -> int:
    return -(-n // size)


def _calls_needed(heavy: int, singles: int) -> int:
    return max(_chunks(heavy, MAX_COLLECTIONS), _chunks(singles, MAX_SUBREQUESTS - MAX_COLLECTIONS), 1)


def choose_singles(groups: Sequence[Group], chunk_size: int) -> set[int]:
    """Indexes of the groups to send record by record: the k smallest, for the k that needs fewest calls."""
    order = sorted(range(len(groups)), key=lambda i: len(groups[i].records))
    heavy = sum(_chunks(len(g.records), chunk_size) for g in groups)
    singles = 0
    best_k, best_calls = 0, _calls_needed(heavy, singles)
    for k, i in enumerate(order, start=1):
        n = len(groups[i].records)
        heavy, singles = heavy - _chunks(n, chunk_size), singles + n
        if singles > MAX_SUBREQUESTS - MAX_COLLECTIONS:
            break
        calls = _calls_needed(heavy, singles)
        if calls < best_calls:
            best_k, best_calls = k, calls
    return set(order[:best_k])


def plan(groups: Sequence[Group], chunk_size: int = 200) -> list[list[Sub]]:
    """Composite calls for `groups` (given in write order), each within Salesforce's subrequest limits."""
    singles = choose_singles(groups, chunk_size)
    calls: list[list[Sub]] = []
    current: list[Sub] = []
    heavy = 0
    n = 0

    def add(sub: Sub) -> None:
        nonlocal current, heavy, n
        if len(current) == MAX_SUBREQUESTS or (not sub.single and heavy == MAX_COLLECTIONS):
            calls.append(current)
            current, heavy = [], 0
        current.append(sub)
        heavy += not sub.single
        n += 1

    for i, g in enumerate(groups):
        if i in singles:
            for r in g.records:
                add(Sub(f"r{n}", g.sobject, g.ext_field, [r], single=True))
        else:
            for start in range(0, len(g.records), chunk_size):
                add(Sub(f"r{n}", g.sobject, g.ext_field, g.records[start:start + chunk_size], single=False))
    if current:
        calls.append(current)
    return calls


def waves(calls: list[list[Sub]]) -> list[list[list[Sub]]]:
    """Consecutive calls grouped into waves that may run concurrently (one shared object rank per wave)."""
    out: list[list[list[Sub]]] = []
    last_rank: int | None = None
    for call in calls:
        ranks = {object_rank(s.sobject) for s in call}
        rank = next(iter(ranks)) if len(ranks) == 1 else None
        if out and rank is not None and rank == last_rank:
            out[-1].append(call)
        else:
            out.append([call])
        last_rank = rank
    return out
