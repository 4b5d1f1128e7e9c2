"""Writing one batch to Salesforce: parents first, the right path per object, every record decided.

`BatchWriter.write(records)` returns a `WriteReport`: each record landed, was dead-lettered (code,
message), or must be retried later (transient failure, budget pause, missing parent). Objects are
written in `OBJECT_ORDER`: large groups through Bulk 2.0, the others packed into Composite calls
(several objects per API call, subrequests in order; `sink_composite=false` sends one Collections call
per object chunk instead). A child whose parent in the same batch did not land waits for the parent's
retry without it counting as a try. Transient failures are retried a few times inside the batch with
backoff and jitter (with the children that missed those parents); a 400 on a whole Collections request
is bisected so one poison record cannot sink the others. A child whose parent stays missing (N tries
and T seconds) gets a stub parent (insert only), then one more try; only if that fails is it
dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from paysync.outcomes import Outcome, backoff_delay
from sinks.client import CallError, SalesforceClient
from sinks.composite import Group, Sub, plan, waves
from sinks.errors import MISSING_PARENT_RE, Decision, classify_call, classify_record, parse_bulk_error
from sinks.metrics import SinkMetrics
from sinks.payload import bulk_csv, collection_body, stub_record
from sinks.records import PendingRecord, object_rank
from sinks.settings import SinkSettings

log = logging.getLogger(__name__)

# (decision or None when landed, message, path)
Result = tuple[Decision | None, str, str]


@dataclass
class WriteReport:
    """What happened to every record of a batch."""

    landed: list[PendingRecord] = field(default_factory=list)
    dead: list[tuple[PendingRecord, str, str]] = field(default_factory=list)  # record, code, message
    retry: list[PendingRecord] = field(default_factory=list)
    paused: bool = False


class BatchWriter:
    """Writes batches through a `SalesforceClient`; the pool runs a tier's calls concurrently."""

    def __init__(self, client: SalesforceClient, settings: SinkSettings, metrics: SinkMetrics, pool: ThreadPoolExecutor) -> None:
        self.client = client
        self.s = settings
        self.metrics = metrics
        self.pool = pool
        self.in_batch_retries = 4

    # public ----------------------------------------------------------------------------------

    def write(self, records: Sequence[PendingRecord]) -> WriteReport:
        """Write `records` (unique keys) parents first; every record ends in exactly one report list."""
        report = WriteReport()
        by_group: dict[tuple[str, str], list[PendingRecord]] = defaultdict(list)
        for r in records:
            by_group[(r.sobject, r.external_id_field)].append(r)
        groups = [Group(sobject, ext_field, by_group[(sobject, ext_field)])
                  for sobject, ext_field in sorted(by_group, key=lambda g: (object_rank(g[0]), g))]
        results = self._write_groups(groups)
        by_key = {r.key: r for r in records}
        failed_parents = {r.key for r in records if results[id(r)][0] is not None
                          and results[id(r)][0].outcome is not Outcome.DEAD_LETTER}
        for group in groups:
            needs_stub: list[PendingRecord] = []
            for r in group.records:
                decision, message, path = results[id(r)]
                if decision is None:
                    self._landed(report, r, path)
                    continue
                waiting_for = [by_key[p.key] for p in r.parents.values() if p.key in failed_parents]
                if decision.outcome is Outcome.PAUSE:
                    report.paused = True
                    self._later(report, [r], attempt=False)
                elif decision.missing_parent and waiting_for:
                    # its parent in this batch did not land: wait for the parent's retry, not counted as a try
                    self._later(report, [r], attempt=False)
                    r.not_before = max(p.not_before for p in waiting_for)
                elif decision.missing_parent:
                    if self._wait_is_over(r):
                        needs_stub.append(r)
                    else:
                        r.parent_waits += 1
                        self.metrics.retries.labels(code=decision.code).inc()
                        self._later(report, [r], attempt=True)
                        # the parent is usually a few messages away: retry with the next regular batch
                        r.not_before = max(r.not_before, time.monotonic() + self.s.sink_batch_max_age_s)
                elif decision.outcome is Outcome.DEAD_LETTER:
                    self._dead(report, r, decision.code, message, path)
                else:
                    self._later(report, [r], attempt=True)
            if needs_stub:
                self._stub_and_retry(report, group, needs_stub)
        return report

    def write_sync_errors(self, rows: list[dict[str, Any]]) -> int:
        """Best effort: upsert `Stripe_Sync_Error__c` records (already in Collections form); returns how many landed."""
        landed = 0
        for i in range(0, len(rows), self.s.sink_collection_size):
            chunk = rows[i:i + self.s.sink_collection_size]
            try:
                results = self.client.upsert_collection(
                    "Stripe_Sync_Error__c", "Sync_Error_Key__c", {"allOrNone": False, "records": chunk}
                )
            except CallError as exc:
                log.warning("sync error records not written", extra={"code": exc.decision.code})
                continue
            landed += sum(1 for r in results if r.get("success"))
        return landed

    # outcomes --------------------------------------------------------------------------------

    def _landed(self, report: WriteReport, r: PendingRecord, path: str) -> None:
        report.landed.append(r)
        self.metrics.records.labels(sobject=r.sobject, path=path, result="upserted").inc()

    def _dead(self, report: WriteReport, r: PendingRecord, code: str, message: str, path: str) -> None:
        report.dead.append((r, code, message))
        self.metrics.records.labels(sobject=r.sobject, path=path, result="dead_letter").inc()

    def _later(self, report: WriteReport, records: Sequence[PendingRecord], attempt: bool) -> None:
        now = time.monotonic()
        for r in records:
            if attempt:
                r.note_failure()
            r.not_before = now + backoff_delay(
                max(r.attempts, 1), base=self.s.sink_retry_base_s, cap=self.s.sink_retry_cap_s
            ) if attempt else now
            report.retry.append(r)

    def _wait_is_over(self, r: PendingRecord) -> bool:
        if r.stub_tried or r.parent_waits + 1 < self.s.sink_parent_wait_attempts:
            return False
        waited = (time.time() * 1000 - (r.first_failure_ms or time.time() * 1000)) / 1000
        return waited >= self.s.sink_parent_wait_s

    # paths -----------------------------------------------------------------------------------

    def _write_groups(self, groups: list[Group]) -> dict[int, Result]:
        """Write `groups` (write order), retrying transient failures in place; one Result per record.

        A record is retried in place when its failure is transient, or when it missed a parent that is
        itself being retried (the parent goes first again). A pause stops everything at once.
        """
        final: dict[int, Result] = {}
        todo = groups
        attempt = 0
        while todo:
            results = self._send(todo)
            if any(d is not None and d.outcome is Outcome.PAUSE for d, _, _ in results.values()):
                final.update(results)
                break
            retrying: set[str] = set()
            again: list[Group] = []
            for g in todo:
                kept: list[PendingRecord] = []
                for r in g.records:
                    decision, _, _ = results[id(r)]
                    transient = decision is not None and decision.outcome in (Outcome.RETRY, Outcome.REAUTH)
                    parent_again = decision is not None and decision.missing_parent and any(
                        p.key in retrying for p in r.parents.values())
                    if attempt < self.in_batch_retries and ((transient and not decision.missing_parent) or parent_again):
                        self.metrics.retries.labels(code=decision.code).inc()
                        kept.append(r)
                        retrying.add(r.key)
                    else:
                        final[id(r)] = results[id(r)]
                if kept:
                    again.append(Group(g.sobject, g.ext_field, kept))
            todo = again
            if todo:
                time.sleep(backoff_delay(attempt, base=self.s.sink_retry_base_s, cap=2.0))
                attempt += 1
        return final

    def _send(self, groups: list[Group]) -> dict[int, Result]:
        """One attempt at every record: Bulk for large groups, Composite (or Collections) for the rest, in order.

        After a call answers with a pause, the records not yet sent get the same pause without a call.
        """
        steps: list[tuple[list[PendingRecord], Callable[[], dict[int, Result]]]] = []
        small: list[Group] = []

        def plan_small() -> None:
            if self.s.sink_composite:
                for wave in waves(plan(small, self.s.sink_collection_size)):
                    steps.append(([r for call in wave for sub in call for r in sub.records],
                                  partial(self._composite_wave, wave)))
            else:
                steps.extend((g.records, partial(self._collections, g.sobject, g.ext_field, g.records)) for g in small)
            small.clear()

        for g in groups:
            if len(g.records) >= self.s.sink_bulk_threshold:
                plan_small()
                steps.append((g.records, partial(self._bulk, g.sobject, g.ext_field, g.records)))
            else:
                small.append(g)
        plan_small()
        out: dict[int, Result] = {}
        pause: Result | None = None
        for records, step in steps:
            if pause is not None:
                out.update({id(r): pause for r in records})
                continue
            results = step()
            out.update(results)
            pause = next((res for res in results.values() if res[0] is not None and res[0].outcome is Outcome.PAUSE),
                         None)
        return out

    def _composite_wave(self, wave: list[list[Sub]]) -> dict[int, Result]:
        """The Composite calls of one wave, concurrently when there are several (see `sinks.composite.waves`)."""
        if len(wave) == 1:
            return self._composite_call(wave[0])
        out: dict[int, Result] = {}
        for part in self.pool.map(self._composite_call, wave):
            out.update(part)
        return out

    def _composite_call(self, subs: list[Sub]) -> dict[int, Result]:
        """One Composite call; each subrequest's answer read like the plain call's (a refused call: per object)."""
        path = "composite"
        out: dict[int, Result] = {}
        try:
            answers = self.client.composite([sub.request(self.client.api_version) for sub in subs])
        except CallError as exc:
            if exc.decision.outcome is Outcome.DEAD_LETTER:  # the call as a whole was refused: fall back per object
                log.warning("composite call refused; using Collections", extra={"code": exc.decision.code})
                for sub in subs:
                    out.update(self._collection_chunk(sub.sobject, sub.ext_field, sub.records))
                return out
            return {id(r): (exc.decision, exc.message, path) for sub in subs for r in sub.records}
        for sub, answer in zip(subs, answers):
            status = int(answer.get("httpStatusCode") or 0)
            body = answer.get("body")
            if sub.single:
                out.update(self._single_result(sub.records[0], status, body, path))
            elif status < 300 and isinstance(body, list):
                out.update(self._record_results(sub.records, body, path))
            else:
                code, message = _error_body(body)
                decision = classify_call(status, code, message)
                if decision.outcome is Outcome.DEAD_LETTER and len(sub.records) > 1:
                    out.update(self._collection_chunk(sub.sobject, sub.ext_field, sub.records))  # find the culprit
                else:
                    out.update({id(r): (decision, message, path) for r in sub.records})
        return out

    def _single_result(self, r: PendingRecord, status: int, body: Any, path: str) -> dict[int, Result]:
        if status < 300 and isinstance(body, dict) and body.get("success", True):
            return {id(r): (None, "", path)}
        code, message = _error_body(body)
        if status in (400, 404):
            return {id(r): (classify_record(code or "", message), message, path)}
        return {id(r): (classify_call(status, code, message), message, path)}

    def _collections(self, sobject: str, ext_field: str, records: list[PendingRecord]) -> dict[int, Result]:
        size = self.s.sink_collection_size
        chunks = [records[i:i + size] for i in range(0, len(records), size)]
        out: dict[int, Result] = {}
        if len(chunks) == 1:
            out.update(self._collection_chunk(sobject, ext_field, chunks[0]))
        else:
            for part in self.pool.map(lambda c: self._collection_chunk(sobject, ext_field, c), chunks):
                out.update(part)
        return out

    def _collection_chunk(self, sobject: str, ext_field: str, chunk: list[PendingRecord]) -> dict[int, Result]:
        path = "collections"
        try:
            results = self.client.upsert_collection(sobject, ext_field, collection_body(chunk))
        except CallError as exc:
            if exc.decision.outcome is Outcome.DEAD_LETTER and len(chunk) > 1:
                half = len(chunk) // 2  # a malformed request: find the record(s) that cause it
                return {**self._collection_chunk(sobject, ext_field, chunk[:half]),
                        **self._collection_chunk(sobject, ext_field, chunk[half:])}
            return {id(r): (exc.decision, exc.message, path) for r in chunk}
        return self._record_results(chunk, results, path)

    @staticmethod
    def _record_results(chunk: list[PendingRecord], results: list[Any], path: str) -> dict[int, Result]:
        """Per-record Collections results (in request order) → one Result per record."""
        if len(results) != len(chunk):
            d = Decision(Outcome.RETRY, "RESULT_MISMATCH")
            return {id(r): (d, f"{len(results)} results for {len(chunk)} records", path) for r in chunk}
        out: dict[int, Result] = {}
        for r, res in zip(chunk, results):
            if isinstance(res, dict) and res.get("success"):
                out[id(r)] = (None, "", path)
            else:
                err = ((res.get("errors") if isinstance(res, dict) else None) or [{}])[0]
                message = str(err.get("message") or "")
                out[id(r)] = (classify_record(str(err.get("statusCode") or err.get("errorCode") or ""), message), message, path)
        return out

    def _bulk(self, sobject: str, ext_field: str, records: list[PendingRecord]) -> dict[int, Result]:
        path = "bulk"
        try:
            job = self.client.bulk_upsert(
                sobject, ext_field, bulk_csv(records), self.s.sink_bulk_poll_max_s, self.s.sink_bulk_timeout_s
            )
        except CallError as exc:
            if exc.decision.outcome is Outcome.DEAD_LETTER:
                log.warning("bulk job refused; using Collections", extra={"sobject": sobject, "code": exc.decision.code})
                return self._collections(sobject, ext_field, records)
            return {id(r): (exc.decision, exc.message, path) for r in records}
        if job.state != "JobComplete":
            log.warning("bulk job did not complete; using Collections",
                        extra={"sobject": sobject, "job": job.job_id, "state": job.state, "error": job.error_message})
            return self._collections(sobject, ext_field, records)
        by_id: dict[str, PendingRecord] = {r.external_id: r for r in records}
        out: dict[int, Result] = {}
        for row in job.successful:
            r = by_id.get(row.get(ext_field, ""))
            if r is not None:
                out[id(r)] = (None, "", path)
        for row in job.failed:
            r = by_id.get(row.get(ext_field, ""))
            if r is not None:
                code, message = parse_bulk_error(row.get("sf__Error", ""))
                out[id(r)] = (classify_record(code, message), message, path)
        missing = Decision(Outcome.RETRY, "BULK_UNPROCESSED")
        for r in records:
            out.setdefault(id(r), (missing, "not in the job's results", path))
        return out

    # stub parents ----------------------------------------------------------------------------

    def _stub_and_retry(self, report: WriteReport, group: Group, children: list[PendingRecord]) -> None:
        """Insert stub parents for `children` (of `group`'s object), write them again; each ends in `report`."""
        stubs: dict[str, dict[str, Any]] = {}
        unstubbable: list[PendingRecord] = []
        for child in children:
            child.stub_tried = True
            candidates = list(child.parents.values())
            ok = True
            for p in candidates:
                stub = stub_record(p.sobject, p.external_id_field, p.external_id)
                if stub is None:
                    ok = False
                else:
                    stubs[p.key] = stub
            if not ok:
                unstubbable.append(child)
        for child in unstubbable:
            self._dead(report, child, "MISSING_PARENT", "parent addressed by Id does not exist; cannot stub", "collections")
        children = [c for c in children if c not in unstubbable]
        if not children:
            return
        failed_stub = self._insert_stubs(list(stubs.values()))
        if failed_stub is not None:  # transient: try the whole thing again later
            for c in children:
                c.stub_tried = False
            self._later(report, children, attempt=True)
            return
        results = self._write_groups([Group(group.sobject, group.ext_field, children)])
        for r in children:
            decision, message, path = results[id(r)]
            if decision is None:
                self._landed(report, r, path)
            elif decision.outcome is Outcome.DEAD_LETTER or decision.missing_parent:
                self._dead(report, r, decision.code, message or "parent missing after a stub was inserted", path)
            else:
                report.paused = report.paused or decision.outcome is Outcome.PAUSE
                self._later(report, [r], attempt=decision.outcome is not Outcome.PAUSE)

    def _insert_stubs(self, stubs: list[dict[str, Any]]) -> str | None:
        """Create stub parents (insert only; DUPLICATE_VALUE = it exists now). None, or the transient code."""
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in stubs:
            by_type[s["attributes"]["type"]].append(s)
        for sobject, rows in sorted(by_type.items(), key=lambda kv: object_rank(kv[0])):
            for i in range(0, len(rows), 200):
                try:
                    results = self.client.create_collection({"allOrNone": False, "records": rows[i:i + 200]})
                except CallError as exc:
                    if exc.decision.outcome is Outcome.DEAD_LETTER:
                        continue  # the child's own retry will report the problem
                    return exc.decision.code
                for row, res in zip(rows[i:i + 200], results):
                    if res.get("success"):
                        log.info("stub parent inserted", extra={"sobject": sobject, "external_id": _ext(row)})
                        continue
                    err = (res.get("errors") or [{}])[0]
                    code = str(err.get("statusCode") or "")
                    if code in ("DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID"):
                        continue  # the real parent exists now
                    if classify_record(code, str(err.get("message") or "")).outcome is Outcome.RETRY:
                        return code
        return None


def _error_body(body: Any) -> tuple[str | None, str]:
    """(errorCode, message) of a subrequest's error body (`[{"errorCode", "message"}]`, whatever its shape)."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):  # a single-record SaveResult
            body = errors[0]
        code = body.get("errorCode") or body.get("statusCode")
        return (str(code) if code else None), str(body.get("message") or "")
    return None, str(body or "")[:500]


def _ext(row: dict[str, Any]) -> str:
    return next((str(v) for k, v in row.items() if k != "attributes"), "")


__all__ = ["BatchWriter", "WriteReport", "MISSING_PARENT_RE"]
