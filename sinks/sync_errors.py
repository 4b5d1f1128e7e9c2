"""`Stripe_Sync_Error__c` rows: one per dead letter, keyed by where the failed message was
(`Sync_Error_Key__c` = `<topic>:<partition>:<offset>` of the original message, so a row is written once however
often its letter is seen).

- the sink's own dead letters (`sync_error_row`, written by `BatchWriter.write_sync_errors`);
- the streams stage's dead letters (unknown status, undecodable input), read back from `paysync.dlq`
  (`streams_letter_record`: an ordinary upsert the sink batches, writes and commits like any other);
- `status_upsert(letter, status)`: the `salesforce.upserts` message that sets a row's `Status__c` (Replayed,
  Resolved) when `paysync dlq replay|purge|resolve` acts on its letter.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from sinks.audit import SYNCED_AT, salesforce_datetime
from sinks.records import Origin, PendingRecord

SYNC_ERROR = "Stripe_Sync_Error__c"
SYNC_ERROR_KEY = "Sync_Error_Key__c"
STREAMS_STAGE = "streams"


def sync_error_key(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


def sync_error_row(o: Origin, r: PendingRecord, code: str, message: str) -> dict[str, Any]:
    """A `Stripe_Sync_Error__c` record (Collections form) for one message the sink dead-lettered."""
    return {
        "attributes": {"type": SYNC_ERROR},
        SYNC_ERROR_KEY: sync_error_key(o.topic, o.partition, o.offset),
        "Event_Id__c": o.event_id,
        "Object_Id__c": r.external_id,
        "Error_Code__c": code[:255],
        "Message__c": message[:32768],
        "Topic__c": o.topic,
        "Partition__c": o.partition,
        "Offset__c": o.offset,
        "Status__c": "New",
        SYNCED_AT: salesforce_datetime(datetime.now(timezone.utc)),
    }


def streams_letter_record(letter: dict[str, Any], origin: Origin) -> PendingRecord | None:
    """The row of a streams-stage dead letter (decoded `paysync.DeadLetter`); None for other stages' letters
    (the sink writes its own rows when it dead-letters; producers and ops letters are not sync errors)."""
    if letter.get("stage") != STREAMS_STAGE:
        return None
    key = sync_error_key(str(letter["topic"]), int(letter["partition"]), int(letter["offset"]))
    fields: dict[str, Any] = {
        "Event_Id__c": letter.get("event_id"), "Object_Id__c": letter.get("object_id"),
        "Error_Code__c": str(letter.get("error_code") or "")[:255], "Message__c": str(letter.get("message") or "")[:32768],
        "Topic__c": letter["topic"], "Partition__c": int(letter["partition"]), "Offset__c": int(letter["offset"]),
    }  # no Status__c: the picklist's default (New) on create, so a row already Replayed/Resolved is never reset
    upsert = {"sobject": SYNC_ERROR, "external_id_field": SYNC_ERROR_KEY, "external_id": key, "fields": fields,
              "parents": []}
    return PendingRecord.from_upsert(upsert, origin)


def status_upsert(topic: str, partition: int, offset: int, status: str) -> dict[str, Any]:
    """A `paysync.SalesforceUpsert` setting the row of the letter of message `topic:partition:offset` to `status`.

    Only `Status__c` (a partial upsert): it also creates the row when none was written yet, with the key alone."""
    key = sync_error_key(topic, partition, offset)
    return {"sobject": SYNC_ERROR, "external_id_field": SYNC_ERROR_KEY, "external_id": key,
            "fields": {"Status__c": status}, "parents": [], "source_event_id": None, "version": f"{int(time.time())}::",
            "origin_topic": None, "origin_partition": None, "origin_offset": None,
            "ingested_at": int(time.time() * 1000)}
