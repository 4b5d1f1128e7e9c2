"""Status events ride in the next batch's read call instead of a call of their own (issue 16: calls per batch).

A batch that carries statuses used to cost three Composite calls: the old statuses read, the write, the events
published. The events of one batch now take the free Collections/query slots (at most 5 a call, "Composite":
"up to 5 of them may be sObject Collections or query operations") of the next batch's read call; what finds no room
goes in a call of its own once `max_age_s` old. The fake client records each call's subrequests.
"""

from __future__ import annotations

from typing import Any

from sinks.records import Origin, PendingRecord
from sinks.status_events import HEAVY_PER_CALL, IDS_PER_QUERY, PER_COLLECTION, StatusEvents

EVENTS_URL = "/composite/sobjects"


class RecordingClient:
    """Answers Composite calls (queries: nothing found; inserts: every record lands) and keeps every call."""

    api_version = "59.0"

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def composite(self, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        heavy = sum(1 for s in subs if s["method"] == "GET" or s["url"].endswith(EVENTS_URL))
        assert len(subs) <= 25 and heavy <= HEAVY_PER_CALL  # Salesforce's Composite limits
        self.calls.append(subs)
        return [{"httpStatusCode": 200, "body": {"done": True, "records": []}} if s["method"] == "GET"
                else {"httpStatusCode": 200, "body": [{"success": True} for _ in s["body"]["records"]]} for s in subs]


def _payments(prefix: str, count: int) -> list[PendingRecord]:
    return [PendingRecord("Stripe_Payment__c", "Stripe_Charge_Id__c", f"{prefix}_{n:05d}",
                          {"Status__c": "Succeeded", "Amount__c": "1.00", "Currency__c": "USD"}, {},
                          [Origin("salesforce.upserts", 0, n, None, b"", f"evt_{prefix}_{n}", None)])
            for n in range(count)]


def _inserted(subs: list[dict[str, Any]]) -> list[str]:
    """The Stripe ids of the events a call's insert subrequests carry, in order."""
    return [e["Stripe_Id__c"] for s in subs if s["method"] == "POST" for e in s["body"]["records"]]


def _batch(events: StatusEvents, records: list[PendingRecord], now: float) -> None:
    """One sink batch as `Sink.flush` runs it: read, (the write lands everything), queue the changes."""
    assert events.before(records) == []
    events.after(records, records, now)


def test_a_batch_s_events_ride_in_the_next_batch_s_read_call() -> None:
    client = RecordingClient()
    events = StatusEvents(client)  # type: ignore[arg-type]  # the fake speaks `composite` only
    first, second = _payments("ch_a", 3), _payments("ch_b", 2)
    _batch(events, first, now=10.0)
    assert len(client.calls) == 1 and _inserted(client.calls[0]) == []  # the read alone; the 3 events wait
    assert events.publish_due(10.5, max_age_s=2.0) == 0  # not due yet
    _batch(events, second, now=11.0)
    assert len(client.calls) == 2  # no call of their own
    assert _inserted(client.calls[1]) == [r.external_id for r in first]  # oldest first, in the read call
    assert [s["method"] for s in client.calls[1]] == ["POST", "GET"]
    assert events.published == 3 and len(events.queued) == 2


def test_events_that_find_no_room_go_alone_once_due() -> None:
    client = RecordingClient()
    events = StatusEvents(client)  # type: ignore[arg-type]
    first = _payments("ch_a", 7)
    _batch(events, first, now=10.0)
    full = _payments("ch_b", HEAVY_PER_CALL * IDS_PER_QUERY)  # five queries: a read call with no free slot
    _batch(events, full, now=11.0)
    assert len(client.calls) == 2 and _inserted(client.calls[1]) == []
    assert events.publish_due(11.9, max_age_s=2.0) == 0  # the oldest is 1.9 s old
    assert events.publish_due(12.0, max_age_s=2.0) == 7 + len(full)
    assert len(client.calls) == 4  # 1,007 events: 1,000 (five collections) in one call, 7 in another
    assert _inserted(client.calls[2]) + _inserted(client.calls[3]) == [r.external_id for r in first + full]
    assert events.published == 7 + len(full) and events.queued == [] and events.queued_since is None


def test_a_read_call_fills_only_its_free_slots_and_the_rest_keeps_its_age() -> None:
    client = RecordingClient()
    events = StatusEvents(client)  # type: ignore[arg-type]
    _batch(events, _payments("ch_a", 4 * PER_COLLECTION + 50), now=10.0)  # 850 queued: five collections
    _batch(events, _payments("ch_b", 1), now=11.0)  # one query: four free slots, 800 events
    assert len(_inserted(client.calls[-1])) == 4 * PER_COLLECTION
    assert events.queued_since == 10.0 and len(events.queued) == 50 + 1
    assert [e["Stripe_Id__c"] for e in events.queued[:2]] == ["ch_a_00800", "ch_a_00801"]  # order kept
    assert events.publish_due(12.0, max_age_s=2.0) == 51  # due by the oldest one's age
