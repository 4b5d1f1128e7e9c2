"""The audit trail every record paysync writes carries, stamped by the sink from the record's own origins.

`stamp(records, now)` sets, on every record (any object, partial upserts and Opportunity/Order status updates
included): `Synced_At__c` = the write time, and — when one of its merged messages came from a Stripe event —
`Last_Stripe_Event_Id__c` / `Last_Stripe_Event_At__c` from the latest of them (greatest event `created`, the later
offset on a tie). A record none of whose messages came from an event (a re-fetched snapshot, a balance
transaction from the poller) keeps the last event it had. The event time is the version's `created`
(`core.version`: `created:rank:event id`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from datetime import datetime, timezone

from core.version import decode_version
from sinks.records import Origin, PendingRecord

SYNCED_AT = "Synced_At__c"
EVENT_ID = "Last_Stripe_Event_Id__c"
EVENT_AT = "Last_Stripe_Event_At__c"
AUDIT_FIELDS = (SYNCED_AT, EVENT_ID, EVENT_AT)


def event_created(version: str | None) -> int | None:
    """The event time (unix seconds) of an upsert's version text; None when it is not a version."""
    try:
        return decode_version(version or "")[0]
    except ValueError:
        return None


def salesforce_datetime(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), the form the mappings write."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def latest_event(origins: Iterable[Origin]) -> Origin | None:
    """The origin of the newest Stripe event among `origins` (None when none came from an event)."""
    best: Origin | None = None
    for o in origins:  # oldest first: a later offset wins a tie
        if o.event_id and (best is None or (o.event_created or 0) >= (best.event_created or 0)):
            best = o
    return best


def stamp(records: Iterable[PendingRecord], now: datetime | None = None) -> None:
    """Set the audit fields of every record (see the module docstring)."""
    synced = salesforce_datetime(now or datetime.now(timezone.utc))
    for r in records:
        r.fields[SYNCED_AT] = synced
        latest = latest_event(r.origins)
        if latest is None:
            continue
        r.fields[EVENT_ID] = latest.event_id
        if latest.event_created is not None:
            r.fields[EVENT_AT] = salesforce_datetime(datetime.fromtimestamp(latest.event_created, tz=timezone.utc))


def ingested_millis(value: Any) -> int | None:
    """`ingested_at` as decoded by fastavro (datetime) or raw millis → epoch millis."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)
