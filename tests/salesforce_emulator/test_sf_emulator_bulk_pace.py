"""Bulk API 2.0 jobs processed in the background at a real org's pace: queued in `UploadComplete`, then
`InProgress` at `bulk_records_per_s`, several jobs at once; every HTTP request of a job is one API call."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce

from emulators.salesforce_emulator import EmulatorHandle


class Jobs:
    """A thin Bulk 2.0 ingest client that counts its own HTTP requests."""

    def __init__(self, sf: Salesforce) -> None:
        self.sf, self.requests = sf, 0
        self.base = sf.base_url + "jobs/ingest"

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        self.requests += 1
        headers = {**self.sf.headers, **kwargs.pop("headers", {})}
        resp = self.sf.session.request(method, url, headers=headers, timeout=30, **kwargs)
        assert resp.status_code < 300, resp.text
        return resp

    def submit(self, prefix: str, rows: int) -> str:
        job = self._call("POST", self.base, json={"object": "Stripe_Payout__c", "operation": "insert"}).json()
        csv = "Stripe_Payout_Id__c,Status__c\n" + "".join(f"{prefix}{i},Paid\n" for i in range(rows))
        self._call("PUT", f"{self.base}/{job['id']}/batches", data=csv.encode(), headers={"Content-Type": "text/csv"})
        self._call("PATCH", f"{self.base}/{job['id']}", json={"state": "UploadComplete"})
        return str(job["id"])

    def info(self, job_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self._call("GET", f"{self.base}/{job_id}").json()
        return info

    def abort(self, job_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self._call("PATCH", f"{self.base}/{job_id}", json={"state": "Aborted"}).json()
        return info

    def wait_done(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (info := self.info(job_id))["state"] not in ("JobComplete", "Failed", "Aborted"):
            assert time.monotonic() < deadline, info
            time.sleep(0.05)
        return info


@pytest.fixture()
def jobs(emulator: EmulatorHandle, sf: Salesforce) -> Iterator[Jobs]:
    yield Jobs(sf)
    emulator.set_faults(bulk_queue_s=3.0, bulk_records_per_s=3000)


def test_defaults_look_like_a_real_org(emulator: EmulatorHandle) -> None:
    knobs = emulator.stats()["knobs"]
    assert knobs["bulk_queue_s"] >= 1 and 1000 <= knobs["bulk_records_per_s"] <= 10_000


def test_a_closed_job_waits_queued_in_upload_complete(emulator: EmulatorHandle, jobs: Jobs) -> None:
    emulator.set_faults(bulk_queue_s=120)
    job = jobs.submit("po_queued_", 10)
    assert jobs.info(job)["state"] == "UploadComplete"
    assert jobs.abort(job)["state"] == "Aborted"
    assert jobs.info(job)["numberRecordsProcessed"] == 0


def test_jobs_run_at_the_configured_pace_several_at_once(emulator: EmulatorHandle, jobs: Jobs) -> None:
    emulator.set_faults(bulk_queue_s=0, bulk_records_per_s=1000)
    first, second = jobs.submit("po_pace_a_", 3000), jobs.submit("po_pace_b_", 3000)
    deadline = time.monotonic() + 30
    while not all(jobs.info(j)["state"] == "InProgress" for j in (first, second)):  # both running at once
        assert time.monotonic() < deadline
    done = [jobs.wait_done(j) for j in (first, second)]
    assert [d["state"] for d in done] == ["JobComplete", "JobComplete"]
    assert all(d["numberRecordsProcessed"] == 3000 and d["totalProcessingTime"] >= 2900 for d in done)


def test_every_http_request_of_a_job_counts_one_api_call(emulator: EmulatorHandle, jobs: Jobs) -> None:
    emulator.set_faults(bulk_queue_s=0, bulk_records_per_s=100_000)
    before = emulator.stats()
    job = jobs.submit("po_count_", 5)
    jobs.wait_done(job)
    jobs._call("GET", f"{jobs.base}/{job}/successfulResults")
    jobs._call("GET", f"{jobs.base}/{job}/failedResults")
    after = emulator.stats()
    assert after["calls"]["bulk"] - before["calls"]["bulk"] == jobs.requests
    assert after["api_used"] - before["api_used"] == jobs.requests
