"""The `Stripe_Sync_Error__c` row of a dead letter follows what `paysync dlq` does to the letter.

`replay` sets the rows of the replayed letters to Replayed, `purge` (resolve) the rows of the letters it newly
resolves to Resolved — as partial upserts (`Status__c` only) on `salesforce.upserts`, keyed like every upsert
(`<SObject>:<external id>`), so the sink writes them like any other record (idempotent by `Sync_Error_Key__c`).
Only letters that have a row get one: the streams and the sink stage's (`sinks.sync_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ops.dlq_letters import DeadLetterStore, Letter
from ops.kafka_toolkit import Redriver
from paysync.topics import SALESFORCE_UPSERTS
from sinks.sync_errors import STREAMS_STAGE, SYNC_ERROR, status_upsert

STAGES_WITH_ROWS = frozenset({STREAMS_STAGE, "sink"})
REPLAYED = "Replayed"
RESOLVED = "Resolved"


def update_rows(store: DeadLetterStore, letters: Iterable[Letter], status: str, out: Any) -> int:
    """Produce the status upsert of every letter's row; returns how many were sent (and confirmed)."""
    upserts = [status_upsert(str(letter.field("topic")), int(letter.field("partition")), int(letter.field("offset")),
                             status)
               for letter in letters if letter.record is not None and letter.field("stage") in STAGES_WITH_ROWS]
    if not upserts:
        return 0
    topic = SALESFORCE_UPSERTS.full_name(store.settings.topics.prefix)
    sender = Redriver(store.conf)
    for upsert in upserts:
        key = f"{SYNC_ERROR}:{upsert['external_id']}".encode()
        sender.send(topic, None, key, store.codec.encode(SALESFORCE_UPSERTS.schema, upsert, topic), [])
    sender.finish(max(store.settings.ops_idle_timeout_s, 30.0))
    out.write(f"{len(upserts)} sync error row(s) set to {status}\n")
    return len(upserts)


def newly_resolved(store: DeadLetterStore, before: dict[int, int], after: dict[int, int]) -> list[Letter]:
    """The letters a purge moves from open to resolved: offsets in [before, after) of each partition."""
    return [letter for letter in store.letters()
            if before.get(letter.partition, 0) <= letter.offset < after.get(letter.partition, 0)]
