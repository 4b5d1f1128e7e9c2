"""`sinks.status_events` spreads one batch's read calls (and publish calls) over the sink's pool (issue 16).

The replay benchmark showed a batch of 8,559 records spending 15 s reading old statuses in 6 Composite calls made one
after another before its write could start. These tests make two calls meet inside the fake client: done one after
another, the first call waits for a partner that never comes, and the barrier breaks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sinks.client import CallError
from sinks.errors import classify_call
from sinks.records import Origin, PendingRecord
from sinks.status_events import HEAVY_PER_CALL, IDS_PER_QUERY, StatusEvents

PER_CALL = HEAVY_PER_CALL * IDS_PER_QUERY  # status-bearing records one read call covers


class MeetingClient:
    """Answers Composite calls; each call first waits (at most 10 s) until `party` calls are inside at once."""

    api_version = "59.0"

    def __init__(self, party: int, fail_call: int | None = None) -> None:
        self.barrier = threading.Barrier(party, timeout=10)
        self.fail_call = fail_call
        self.calls = 0
        self.lock = threading.Lock()

    def composite(self, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self.lock:
            self.calls += 1
            n = self.calls
        self.barrier.wait()
        if n == self.fail_call:
            raise CallError(classify_call(503, "SERVER_UNAVAILABLE"), 503, "unavailable")
        if subs[0]["method"] == "GET":
            return [{"httpStatusCode": 200, "body": {"done": True, "records": []}} for _ in subs]
        return [{"httpStatusCode": 200, "body": [{"success": True} for _ in s["body"]["records"]]} for s in subs]


def _payments(count: int) -> list[PendingRecord]:
    return [PendingRecord("Stripe_Payment__c", "Stripe_Charge_Id__c", f"ch_{n:05d}",
                          {"Status__c": "Succeeded", "Amount__c": "1.00", "Currency__c": "USD"}, {},
                          [Origin("salesforce.upserts", 0, n, None, b"", f"evt_{n}", None)])
            for n in range(count)]


def test_a_batch_reads_its_old_statuses_in_concurrent_calls() -> None:
    client = MeetingClient(party=2)
    records = _payments(PER_CALL + 1)  # two read calls
    with ThreadPoolExecutor(max_workers=4) as pool:
        events = StatusEvents(client, pool)  # type: ignore[arg-type]  # the fake speaks `composite` only
        unread = events.before(records)
    assert unread == [] and client.calls == 2
    assert {r.key for r in records} <= set(events.prior)


def test_a_failed_read_call_holds_back_only_its_own_records() -> None:
    client = MeetingClient(party=2, fail_call=2)
    records = _payments(PER_CALL + 7)
    with ThreadPoolExecutor(max_workers=4) as pool:
        unread = StatusEvents(client, pool).before(records)  # type: ignore[arg-type]
    assert len(unread) in (PER_CALL, 7)  # whichever call came second failed, and only its records wait
    assert len({r.key for r in unread}) == len(unread)


def test_a_batch_publishes_its_status_changes_in_concurrent_calls() -> None:
    client = MeetingClient(party=2)
    records = _payments(PER_CALL + 1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        events = StatusEvents(client, pool)  # type: ignore[arg-type]
        assert events.before(records) == []  # none found: every record is new, so every status is a change
        assert events.after(records, records, now=0.0) == len(records)
        assert events.publish_due(0.0, 2.0, force=True) == len(records)
    assert len(records) == events.published
    assert client.calls == 4 and events.prior == {} and events.queued == []
