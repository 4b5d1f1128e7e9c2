"""Bulk API 2.0 jobs tracked asynchronously: submitted by the writer, polled by the consumer loop.

"Bulk API 2.0 Limits and Allocations" / "Bulk API and Bulk API 2.0 Limits and Allocations": "Any data operation
that includes more than 2,000 records is a good candidate for Bulk API 2.0 [...] Jobs with fewer than 2,000
records should involve 'bulkified' synchronous calls in REST (for example, Composite)". A job is processed in the
background for seconds to minutes, and every HTTP request of it (create, upload, close, each poll, each results
CSV) counts as an API call. So a job is submitted (three calls) and the consumer loop goes on; `poll(now)` asks
about the jobs whose time has come (one call each, at growing intervals) and turns a finished job into one
`Result` per record. The records stay uncommitted until then.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from paysync.outcomes import Outcome
from sinks.client import BulkResult, CallError, SalesforceClient
from sinks.errors import Decision, classify_record, parse_bulk_error
from sinks.payload import bulk_csv
from sinks.paths import Result
from sinks.records import PendingRecord
from sinks.settings import SinkSettings

log = logging.getLogger(__name__)

PATH = "bulk"
SUBMIT_CALLS = 3  # create, upload, close


@dataclass
class BulkJob:
    """One job in flight."""

    job_id: str
    sobject: str
    ext_field: str
    records: list[PendingRecord]
    submitted: float
    next_poll: float
    delay: float
    polls: int = 0


class BulkJobs:
    """The jobs in flight, at most `sink_bulk_max_jobs`; owned by the consumer loop (not thread-safe)."""

    def __init__(self, client: SalesforceClient, settings: SinkSettings) -> None:
        self.client = client
        self.s = settings
        self.jobs: list[BulkJob] = []
        self.avg_polls = 3.0  # learned from finished jobs: the expected polls of the next one

    def keys(self) -> set[str]:
        return {r.key for job in self.jobs for r in job.records}

    def record_count(self) -> int:
        return sum(len(job.records) for job in self.jobs)

    def slots(self) -> int:
        return self.s.sink_bulk_max_jobs - len(self.jobs)

    def expected_calls(self) -> float:
        """Calls one more job is expected to cost: submit, polls, one results CSV."""
        return SUBMIT_CALLS + self.avg_polls + 1

    def next_poll_at(self) -> float | None:
        return min((job.next_poll for job in self.jobs), default=None)

    def submit(self, sobject: str, ext_field: str, records: list[PendingRecord]) -> BulkJob:
        """Create, upload and close a job for `records`; raises CallError (nothing in flight then)."""
        job_id = self.client.bulk_submit(sobject, ext_field, bulk_csv(records))
        now = time.monotonic()
        first = self.s.sink_bulk_first_poll_s
        job = BulkJob(job_id, sobject, ext_field, records, now, now + first, first)
        self.jobs.append(job)
        log.info("bulk job submitted", extra={"job": job_id, "sobject": sobject, "records": len(records)})
        return job

    def poll(self, now: float | None = None) -> list[tuple[BulkJob, dict[int, Result]]]:
        """Poll the jobs that are due; the finished ones leave the tracker with one Result per record."""
        now = time.monotonic() if now is None else now
        done: list[tuple[BulkJob, dict[int, Result]]] = []
        for job in [j for j in self.jobs if j.next_poll <= now]:
            results = self._poll_one(job, now)
            if results is not None:
                self.jobs.remove(job)
                done.append((job, results))
        return done

    def _poll_one(self, job: BulkJob, now: float) -> dict[int, Result] | None:
        try:
            info = self.client.bulk_status(job.job_id)
            job.polls += 1
            state = str(info.get("state", ""))
            if state not in ("JobComplete", "Failed", "Aborted"):
                if now - job.submitted > self.s.sink_bulk_timeout_s:
                    self.client.bulk_abort(job.job_id)
                    return _all(job, Decision(Outcome.RETRY, "BULK_TIMEOUT"), f"job {job.job_id} still {state}")
                job.delay = min(self.s.sink_bulk_poll_max_s, job.delay * 1.5)
                job.next_poll = now + job.delay
                return None
            self.avg_polls = 0.8 * self.avg_polls + 0.2 * job.polls
            return resolve(job, self.client.bulk_results(job.job_id, info, len(job.records)))
        except CallError as exc:  # the job keeps running in Salesforce: ask again later
            log.info("bulk job poll failed", extra={"job": job.job_id, "code": exc.decision.code})
            job.next_poll = now + max(job.delay, self.s.sink_pause_check_s)
            return None


def _all(job: BulkJob, decision: Decision, message: str) -> dict[int, Result]:
    return {id(r): (decision, message, PATH) for r in job.records}


def resolve(job: BulkJob, result: BulkResult) -> dict[int, Result]:
    """One Result per record of a finished job; a job that did not complete sends its records through
    Composite next time (`bulk_refused`), since the same job would fail the same way."""
    if result.state != "JobComplete":
        log.warning("bulk job did not complete", extra={"job": job.job_id, "state": result.state,
                                                        "error": result.error_message})
        for r in job.records:
            r.bulk_refused = True
        return _all(job, Decision(Outcome.RETRY, f"BULK_{result.state.upper() or 'FAILED'}"), result.error_message)
    by_id = {r.external_id: r for r in job.records}
    out: dict[int, Result] = {}
    for row in result.failed:
        failed = by_id.get(row.get(job.ext_field, ""))
        if failed is not None:
            code, message = parse_bulk_error(row.get("sf__Error", ""))
            out[id(failed)] = (classify_record(code, message), message, PATH)
    if result.all_others_succeeded:
        landed = [r for r in job.records if id(r) not in out]
    else:
        found = (by_id.get(row.get(job.ext_field, "")) for row in result.successful)
        landed = [ok for ok in found if ok is not None]
    out.update({id(ok): (None, "", PATH) for ok in landed})
    missing = Decision(Outcome.RETRY, "BULK_UNPROCESSED")
    for rec in job.records:
        out.setdefault(id(rec), (missing, "not in the job's results", PATH))
    return out
