"""Writing one batch to Salesforce: parents first, the right path per object, every record decided.

`BatchWriter.write(records, backlog)` returns a `WriteReport`: each record landed, was dead-lettered (code,
message), must be retried later (transient failure, budget pause, missing parent), or went into a Bulk 2.0 job
that is still running (`submitted`; `finish_bulk()` reports it once the job is done). Objects are written in
`OBJECT_ORDER`: large groups through Bulk 2.0 when the backlog and the budget say so (`_use_bulk`), the others
packed into Composite calls (`sink_composite=false`: one Collections call per object chunk). A record whose
parent (or an earlier version of itself) is in a running job waits for the job. A child whose parent in the same
batch did not land waits for the parent's retry without it counting as a try. Transient failures are retried a
few times inside the batch with backoff and jitter (race-like codes at most `retry_limit` writes). A child whose
parent stays missing (N tries and T seconds) gets a stub parent (insert only), then one more try; only if that
fails is it dead-lettered. A refused raw-id link (`sinks.links`) is dropped and the record written again.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from paysync.outcomes import Outcome, backoff_delay
from sinks import status_versions
from sinks.bulkjobs import BulkJob, BulkJobs
from sinks.client import CallError, SalesforceClient
from sinks.composite import MAX_COLLECTIONS, Group, plan, waves
from sinks.links import drop_links, refusal_message, refused_links
from sinks.metrics import SinkMetrics
from sinks.paths import Paths, Result
from sinks.payload import ID_FIELD
from sinks.records import PendingRecord, object_rank
from sinks.settings import SinkSettings
from sinks.stubs import insert_stubs, stubs_for

log = logging.getLogger(__name__)


@dataclass
class WriteReport:
    """What happened to every record of a batch."""

    landed: list[PendingRecord] = field(default_factory=list)
    dead: list[tuple[PendingRecord, str, str]] = field(default_factory=list)  # record, code, message
    retry: list[PendingRecord] = field(default_factory=list)
    refused_links: list[tuple[PendingRecord, str, str]] = field(default_factory=list)  # landed without the link
    submitted: list[BulkJob] = field(default_factory=list)
    paused: bool = False


def group_records(records: Sequence[PendingRecord]) -> list[Group]:
    """Records by (object, external id field), in write order."""
    by_group: dict[tuple[str, str], list[PendingRecord]] = defaultdict(list)
    for r in records:
        by_group[(r.sobject, r.external_id_field)].append(r)
    return [Group(sobject, ext_field, by_group[(sobject, ext_field)])
            for sobject, ext_field in sorted(by_group, key=lambda g: (object_rank(g[0]), g))]


class BatchWriter:
    """Writes batches through a `SalesforceClient`; the pool runs a tier's calls concurrently."""

    def __init__(self, client: SalesforceClient, settings: SinkSettings, metrics: SinkMetrics,
                 pool: ThreadPoolExecutor) -> None:
        self.client = client
        self.s = settings
        self.metrics = metrics
        self.paths = Paths(client, settings.sink_collection_size, pool)
        self.jobs = BulkJobs(client, settings)
        self.in_batch_retries = 4
        self.bulk_enabled = True
        self.absent_links: set[tuple[str, str]] = set()  # (object, link field) the org does not have

    # public ----------------------------------------------------------------------------------

    def write(self, records: Sequence[PendingRecord], backlog: int = 0,
              known_versions: Mapping[str, Mapping[str, str | None]] | None = None) -> WriteReport:
        """Write `records` (unique keys) parents first; every record ends in exactly one report list.
        `known_versions`: status versions already read for this batch (`status_versions.guard`)."""
        report = WriteReport()
        # no payment status goes back
        records, stale, unread = status_versions.guard(self.client, records, known_versions)
        for r in stale:
            self._landed(report, r, "stale_status")
        self._later(report, unread, attempt=True)
        for r in records:
            self._drop_absent_links(report, r)
        sync_groups = self._submit_bulk(report, group_records(records), backlog)
        results, tries = self._write_groups(sync_groups)
        self._decide(report, sync_groups, results, tries)
        return report

    def finish_bulk(self, now: float | None = None) -> WriteReport | None:
        """Poll the running Bulk jobs that are due; a report of the records of those that finished (or None)."""
        finished = self.jobs.poll(now)
        if not finished:
            return None
        report = WriteReport()
        for job, results in finished:
            group = Group(job.sobject, job.ext_field, job.records)
            self._decide(report, [group], results, {})
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

    # deciding --------------------------------------------------------------------------------

    def _decide(self, report: WriteReport, groups: list[Group], results: dict[int, Result],
                tries: dict[int, int]) -> None:
        """Put every record of `groups` in one report list, from its last result."""
        records = [r for g in groups for r in g.records]
        by_key = {r.key: r for r in records}
        failed_parents = {r.key for r in records if (d := results[id(r)][0]) is not None
                          and d.outcome is not Outcome.DEAD_LETTER}
        relink: list[PendingRecord] = []
        for group in groups:
            needs_stub: list[PendingRecord] = []
            for r in group.records:
                decision, message, path = results[id(r)]
                if decision is None:
                    self._landed(report, r, path)
                    continue
                links = refused_links(r, decision, message)
                waiting_for = [by_key[p.key] for p in r.parents.values() if p.key in failed_parents]
                if links:
                    self._refuse_links(report, r, links, decision.code, message)
                    relink.append(r)
                elif decision.outcome is Outcome.PAUSE:
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
                elif decision.outcome is Outcome.DEAD_LETTER or (
                        decision.retry_limit is not None and r.attempts + tries.get(id(r), 1) >= decision.retry_limit):
                    self._dead(report, r, decision.code, message, path)
                else:
                    self._later(report, [r], attempt=True)
            if needs_stub:
                self._stub_and_retry(report, group, needs_stub)
        if relink:
            sub = self.write(relink)
            for name in ("landed", "dead", "retry", "refused_links", "submitted"):
                getattr(report, name).extend(getattr(sub, name))
            report.paused = report.paused or sub.paused

    def _refuse_links(self, report: WriteReport, r: PendingRecord, links: dict[str, Any], code: str,
                      message: str) -> None:
        if code == "INVALID_FIELD":
            self.absent_links.update((r.sobject, name) for name in links)
        drop_links(r, links)
        valued = {name: value for name, value in links.items() if value is not None}
        if not valued:
            return  # only null links an org lacks: nothing was refused that Stripe said
        report.refused_links.append((r, code, refusal_message(valued, message)))
        self.metrics.records.labels(sobject=r.sobject, path="link", result="link_refused").inc()

    def _drop_absent_links(self, report: WriteReport, r: PendingRecord) -> None:
        """A link field the org was seen not to have is dropped before the write (and reported), not bisected for."""
        links = {name: r.fields[name] for (sobject, name) in self.absent_links
                 if sobject == r.sobject and name in r.fields}
        if links:
            self._refuse_links(report, r, links, "INVALID_FIELD", f"No such column {', '.join(links)} on {r.sobject}")

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

    # Bulk ------------------------------------------------------------------------------------

    def _use_bulk(self, n: int, backlog: int) -> bool:
        """Bulk for `n` records of one object? Only for large groups with a free job slot; then the cheaper path
        in calls when the budget is tight, else Bulk when the backlog is large or Bulk is not dearer."""
        if not self.bulk_enabled or n < self.s.sink_bulk_threshold or self.jobs.slots() <= 0:
            return False
        bulk_calls = self.jobs.expected_calls()
        composite_calls = math.ceil(n / (MAX_COLLECTIONS * self.s.sink_collection_size))
        if self.client.budget.share_used() >= self.s.sink_bulk_budget_share:
            return bulk_calls < composite_calls
        return backlog + n >= self.s.sink_bulk_backlog or bulk_calls <= composite_calls

    def _submit_bulk(self, report: WriteReport, groups: list[Group], backlog: int) -> list[Group]:
        """Submit the groups that take Bulk; hold records that depend on a running job; the rest, for Composite."""
        in_flight = self.jobs.keys()
        wait_until = time.monotonic() + self.s.sink_bulk_first_poll_s
        sync: list[Group] = []
        for g in groups:
            held = [r for r in g.records if r.key in in_flight or any(p.key in in_flight for p in r.parents.values())]
            held_ids = {id(r) for r in held}
            rest = [r for r in g.records if id(r) not in held_ids]
            for r in held:  # waits for the job, not counted as a try
                report.retry.append(r)
                r.not_before = max(r.not_before, self.jobs.next_poll_at() or wait_until)
            bulkable = [r for r in rest if not r.bulk_refused]
            if g.ext_field != ID_FIELD and self._use_bulk(len(bulkable), backlog):
                try:
                    report.submitted.append(self.jobs.submit(g.sobject, g.ext_field, bulkable))
                    in_flight.update(r.key for r in bulkable)
                    rest = [r for r in rest if r.bulk_refused]
                except CallError as exc:
                    log.warning("bulk job not submitted; using Composite",
                                extra={"sobject": g.sobject, "code": exc.decision.code})
            if rest:
                sync.append(Group(g.sobject, g.ext_field, rest))
        return sync

    # synchronous paths -----------------------------------------------------------------------

    def _write_groups(self, groups: list[Group]) -> tuple[dict[int, Result], dict[int, int]]:
        """Write `groups` (write order), retrying transient failures in place; one Result per record, and how
        many writes each record had.

        A record is retried in place when its failure is transient, or when it missed a parent that is
        itself being retried (the parent goes first again). A pause stops everything at once.
        """
        final: dict[int, Result] = {}
        tries: dict[int, int] = defaultdict(int)
        todo = groups
        attempt = 0
        while todo:
            results = self._send(todo)
            for g in todo:
                for r in g.records:
                    tries[id(r)] += 1
            if any(d is not None and d.outcome is Outcome.PAUSE for d, _, _ in results.values()):
                final.update(results)
                break
            retrying: set[str] = set()
            again: list[Group] = []
            for g in todo:
                kept: list[PendingRecord] = []
                for r in g.records:
                    decision, _, _ = results[id(r)]
                    if decision is None:
                        final[id(r)] = results[id(r)]
                        continue
                    transient = decision.outcome in (Outcome.RETRY, Outcome.REAUTH) and not decision.missing_parent
                    limit = min(self.in_batch_retries + 1, decision.retry_limit or self.in_batch_retries + 1)
                    parent_again = decision.missing_parent and any(p.key in retrying for p in r.parents.values())
                    if tries[id(r)] < limit and attempt < self.in_batch_retries and (transient or parent_again):
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
        return final, tries

    def _send(self, groups: list[Group]) -> dict[int, Result]:
        """One attempt at every record through Composite (or Collections), in order.

        After a call answers with a pause, the records not yet sent get the same pause without a call.
        """
        steps: list[tuple[list[PendingRecord], Callable[[], dict[int, Result]]]] = []
        if self.s.sink_composite:
            for wave in waves(plan(groups, self.s.sink_collection_size)):
                steps.append(([r for call in wave for sub in call for r in sub.records],
                              partial(self.paths.composite_wave, wave)))
        else:
            steps.extend((g.records, partial(self.paths.collections, g.sobject, g.ext_field, g.records))
                         for g in groups)
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

    # stub parents ----------------------------------------------------------------------------

    def _stub_and_retry(self, report: WriteReport, group: Group, children: list[PendingRecord]) -> None:
        """Insert stub parents for `children` (of `group`'s object), write them again; each ends in `report`."""
        stubs, unstubbable = stubs_for(children)
        for child in unstubbable:
            self._dead(report, child, "MISSING_PARENT", "parent addressed by Id does not exist; cannot stub", "collections")
        children = [c for c in children if c not in unstubbable]
        if not children:
            return
        if insert_stubs(self.client, stubs) is not None:  # transient: try the whole thing again later
            for c in children:
                c.stub_tried = False
            self._later(report, children, attempt=True)
            return
        results, _ = self._write_groups([Group(group.sobject, group.ext_field, children)])
        for r in children:
            decision, message, path = results[id(r)]
            if decision is None:
                self._landed(report, r, path)
            elif decision.outcome is Outcome.DEAD_LETTER or decision.missing_parent:
                self._dead(report, r, decision.code, message or "parent missing after a stub was inserted", path)
            else:
                report.paused = report.paused or decision.outcome is Outcome.PAUSE
                self._later(report, [r], attempt=decision.outcome is not Outcome.PAUSE)
