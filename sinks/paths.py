"""The synchronous write paths: Composite calls (several objects per call) and plain Collections calls.

Each method makes its calls and answers one `Result` per record: `(None, "", path)` when it landed, else the
error table's decision, the message and the path. A 400 on a whole Collections request is bisected so one
poison record cannot sink the others. Records addressed by Salesforce id (`external_id_field == "Id"`) go as
a Collections update or PATCH by id, never an upsert by `Id`.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from paysync.outcomes import Outcome
from sinks.client import CallError, SalesforceClient
from sinks.composite import Sub
from sinks.errors import Decision, classify_call, classify_record, error_fields
from sinks.payload import ID_FIELD, collection_body, update_body
from sinks.records import PendingRecord

log = logging.getLogger(__name__)

# (decision or None when landed, message, path)
Result = tuple[Decision | None, str, str]


class Paths:
    """Composite and Collections calls through one client; the pool runs a wave's calls concurrently."""

    def __init__(self, client: SalesforceClient, collection_size: int, pool: ThreadPoolExecutor) -> None:
        self.client = client
        self.collection_size = collection_size
        self.pool = pool

    def composite_wave(self, wave: list[list[Sub]]) -> dict[int, Result]:
        """The Composite calls of one wave, concurrently when there are several (see `sinks.composite.waves`)."""
        if len(wave) == 1:
            return self.composite_call(wave[0])
        out: dict[int, Result] = {}
        for part in self.pool.map(self.composite_call, wave):
            out.update(part)
        return out

    def composite_call(self, subs: list[Sub]) -> dict[int, Result]:
        """One Composite call; each subrequest's answer read like the plain call's (a refused call: per object)."""
        path = "composite"
        out: dict[int, Result] = {}
        try:
            answers = self.client.composite([sub.request(self.client.api_version) for sub in subs])
        except CallError as exc:
            if exc.decision.outcome is Outcome.DEAD_LETTER:  # the call as a whole was refused: fall back per object
                log.warning("composite call refused; using Collections", extra={"code": exc.decision.code})
                for sub in subs:
                    out.update(self.collection_chunk(sub.sobject, sub.ext_field, sub.records))
                return out
            return {id(r): (exc.decision, exc.message, path) for sub in subs for r in sub.records}
        for sub, answer in zip(subs, answers):
            status = int(answer.get("httpStatusCode") or 0)
            body = answer.get("body")
            if sub.single:
                out.update(self.single_result(sub.records[0], status, body, path))
            elif status < 300 and isinstance(body, list):
                out.update(self.record_results(sub.records, body, path))
            else:
                code, message = error_fields(body)
                decision = classify_call(status, code, message)
                if decision.outcome is Outcome.DEAD_LETTER and len(sub.records) > 1:
                    out.update(self.collection_chunk(sub.sobject, sub.ext_field, sub.records))  # find the culprit
                else:
                    out.update({id(r): (decision, message, path) for r in sub.records})
        return out

    @staticmethod
    def single_result(r: PendingRecord, status: int, body: Any, path: str) -> dict[int, Result]:
        """A single-record subrequest's answer (a PATCH by id answers 204 without a body)."""
        if status < 300 and (body is None or (isinstance(body, dict) and body.get("success", True))):
            r.salesforce_id = _answered_id(r, body)
            return {id(r): (None, "", path)}
        code, message = error_fields(body)
        if status in (400, 404):
            return {id(r): (classify_record(code or "", message), message, path)}
        return {id(r): (classify_call(status, code, message), message, path)}

    def collections(self, sobject: str, ext_field: str, records: list[PendingRecord]) -> dict[int, Result]:
        """Plain Collections calls (≤ `collection_size` records each), concurrently."""
        size = self.collection_size
        chunks = [records[i:i + size] for i in range(0, len(records), size)]
        out: dict[int, Result] = {}
        if len(chunks) == 1:
            out.update(self.collection_chunk(sobject, ext_field, chunks[0]))
        else:
            for part in self.pool.map(lambda c: self.collection_chunk(sobject, ext_field, c), chunks):
                out.update(part)
        return out

    def collection_chunk(self, sobject: str, ext_field: str, chunk: list[PendingRecord]) -> dict[int, Result]:
        """One Collections upsert (or update by id) of `chunk`; a refused request is bisected."""
        path = "collections"
        try:
            if ext_field == ID_FIELD:
                results = self.client.update_collection(update_body(chunk))
            else:
                results = self.client.upsert_collection(sobject, ext_field, collection_body(chunk))
        except CallError as exc:
            if exc.decision.outcome is Outcome.DEAD_LETTER and len(chunk) > 1:
                half = len(chunk) // 2  # a malformed request: find the record(s) that cause it
                return {**self.collection_chunk(sobject, ext_field, chunk[:half]),
                        **self.collection_chunk(sobject, ext_field, chunk[half:])}
            return {id(r): (exc.decision, exc.message, path) for r in chunk}
        return self.record_results(chunk, results, path)

    @staticmethod
    def record_results(chunk: list[PendingRecord], results: list[Any], path: str) -> dict[int, Result]:
        """Per-record Collections results (in request order) → one Result per record."""
        if len(results) != len(chunk):
            d = Decision(Outcome.RETRY, "RESULT_MISMATCH")
            return {id(r): (d, f"{len(results)} results for {len(chunk)} records", path) for r in chunk}
        out: dict[int, Result] = {}
        for r, res in zip(chunk, results):
            if isinstance(res, dict) and res.get("success"):
                r.salesforce_id = _answered_id(r, res)
                out[id(r)] = (None, "", path)
            else:
                code, message = error_fields(res)
                out[id(r)] = (classify_record(code or "", message), message, path)
        return out


def _answered_id(r: PendingRecord, answer: Any) -> str | None:
    """The record's Salesforce Id from a success answer (a PATCH by id answers 204 without a body: its own id)."""
    if isinstance(answer, dict) and isinstance(answer.get("id"), str):
        return str(answer["id"])
    return r.external_id if r.external_id_field == ID_FIELD else r.salesforce_id
