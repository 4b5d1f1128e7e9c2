"""Writing one batch to Salesforce: parents first, the right path per object, every record decided.

`BatchWriter.write(records)` returns a `WriteReport`: each record landed, was dead-lettered (code,
message), or must be retried later (transient failure, budget pause, missing parent). Within a batch
objects are written in `OBJECT_ORDER`; a child whose parent in the same batch did not land is not sent
and waits for the parent's retry. Transient failures are retried a few times inside the batch with
backoff and jitter; a 400 on a whole Collections call is bisected so one poison record cannot sink
the others. A child whose parent stays missing (N tries and T seconds) gets a stub parent (insert
only), then one more try; only if that fails is it dead-lettered.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from paysync.outcomes import Outcome, backoff_delay
from sinks.client import CallError, SalesforceClient
from sinks.errors import MISSING_PARENT_RE, Decision, classify_record, parse_bulk_error
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
        groups: dict[tuple[str, str], list[PendingRecord]] = defaultdict(list)
        for r in records:
            groups[(r.sobject, r.external_id_field)].append(r)
        unresolved: set[str] = set()  # keys in this batch that did not land and may still (retry/pause)
        by_key = {r.key: r for r in records}
        for (sobject, ext_field) in sorted(groups, key=lambda g: (object_rank(g[0]), g)):
            group = groups[(sobject, ext_field)]
            if report.paused:
                self._later(report, group, attempt=False)
                unresolved.update(r.key for r in group)
                continue
            blocked = [r for r in group if any(p.key in unresolved for p in r.parents.values())]
            ready = [r for r in group if not any(p.key in unresolved for p in r.parents.values())]
            self._later(report, blocked, attempt=False)
            for r in blocked:  # wait for the parent's retry, not a tight loop
                r.not_before = max(by_key[p.key].not_before for p in r.parents.values() if p.key in unresolved)
            unresolved.update(r.key for r in blocked)
            results = self._write_group(sobject, ext_field, ready)
            needs_stub: list[PendingRecord] = []
            for r in ready:
                decision, message, path = results[id(r)]
                if decision is None:
                    self._landed(report, r, path)
                elif decision.missing_parent:
                    if self._wait_is_over(r):
                        needs_stub.append(r)
                    else:
                        r.parent_waits += 1
                        self.metrics.retries.labels(code=decision.code).inc()
                        self._later(report, [r], attempt=True)
                        # the parent is usually a few messages away: retry with the next regular batch
                        r.not_before = max(r.not_before, time.monotonic() + self.s.sink_batch_max_age_s)
                        unresolved.add(r.key)
                elif decision.outcome is Outcome.DEAD_LETTER:
                    self._dead(report, r, decision.code, message, path)
                else:
                    if decision.outcome is Outcome.PAUSE:
                        report.paused = True
                    self._later(report, [r], attempt=decision.outcome is not Outcome.PAUSE)
                    unresolved.add(r.key)
            if needs_stub:
                unresolved.update(self._stub_and_retry(report, sobject, ext_field, needs_stub))
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

    def _write_group(self, sobject: str, ext_field: str, records: list[PendingRecord]) -> dict[int, Result]:
        """Write one object's records, retrying transient failures in place; one Result per record."""
        final: dict[int, Result] = {}
        todo = records
        attempt = 0
        while todo:
            if len(todo) >= self.s.sink_bulk_threshold:
                results = self._bulk(sobject, ext_field, todo)
            else:
                results = self._collections(sobject, ext_field, todo)
            again: list[PendingRecord] = []
            paused = any(d is not None and d.outcome is Outcome.PAUSE for d, _, _ in results.values())
            for r in todo:
                decision, message, path = results[id(r)]
                transient = decision is not None and decision.outcome in (Outcome.RETRY, Outcome.REAUTH)
                if transient and not decision.missing_parent and not paused and attempt < self.in_batch_retries:
                    self.metrics.retries.labels(code=decision.code).inc()
                    again.append(r)
                else:
                    final[id(r)] = (decision, message, path)
            todo = again
            if todo:
                time.sleep(backoff_delay(attempt, base=self.s.sink_retry_base_s, cap=2.0))
                attempt += 1
        return final

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
        if len(results) != len(chunk):
            d = Decision(Outcome.RETRY, "RESULT_MISMATCH")
            return {id(r): (d, f"{len(results)} results for {len(chunk)} records", path) for r in chunk}
        out: dict[int, Result] = {}
        for r, res in zip(chunk, results):
            if res.get("success"):
                out[id(r)] = (None, "", path)
            else:
                err = (res.get("errors") or [{}])[0]
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

    def _stub_and_retry(self, report: WriteReport, sobject: str, ext_field: str, children: list[PendingRecord]) -> set[str]:
        """Insert stub parents for `children`, write them again; returns keys still unresolved."""
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
            return set()
        failed_stub = self._insert_stubs(list(stubs.values()))
        if failed_stub is not None:  # transient: try the whole thing again later
            for c in children:
                c.stub_tried = False
            self._later(report, children, attempt=True)
            return {c.key for c in children}
        results = self._write_group(sobject, ext_field, children)
        unresolved: set[str] = set()
        for r in children:
            decision, message, path = results[id(r)]
            if decision is None:
                self._landed(report, r, path)
            elif decision.outcome is Outcome.DEAD_LETTER or decision.missing_parent:
                self._dead(report, r, decision.code, message or "parent missing after a stub was inserted", path)
            else:
                report.paused = report.paused or decision.outcome is Outcome.PAUSE
                self._later(report, [r], attempt=True)
                unresolved.add(r.key)
        return unresolved

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


def _ext(row: dict[str, Any]) -> str:
    return next((str(v) for k, v in row.items() if k != "attributes"), "")


__all__ = ["BatchWriter", "WriteReport", "MISSING_PARENT_RE"]
