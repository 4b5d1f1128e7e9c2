"""What the processor asks the worker to produce, and how upserts and dead letters become bytes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from paysync.codec import AvroCodec
from paysync.deadletter import dead_letter
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS


class Target(str, Enum):
    """Where an output goes: the sink's topic, the dead-letter topic, or the internal payout topic."""

    UPSERT = "upsert"
    DEAD_LETTER = "dead_letter"
    PAYOUT = "payout"


@dataclass(frozen=True)
class Origin:
    """The input record an output came from."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Output:
    """One record to produce: `value` is a SalesforceUpsert / DeadLetter dict, or a payout message (JSON)."""

    target: Target
    key: bytes | None
    value: dict[str, Any]


def upsert_key(upsert: dict[str, Any]) -> bytes:
    """`<SObject>:<external id>`, the key of `salesforce.upserts`."""
    return f"{upsert['sobject']}:{upsert['external_id']}".encode()


def stamp_upsert(upsert: dict[str, Any], origin: Origin, ingested_at: int | None) -> Output:
    """The upsert with its origin and ingestion time filled in, as an Output."""
    record = dict(upsert)
    record.setdefault("parents", [])
    record.setdefault("source_event_id", None)
    record["origin_topic"] = origin.topic
    record["origin_partition"] = origin.partition
    record["origin_offset"] = origin.offset
    record["ingested_at"] = ingested_at
    return Output(Target.UPSERT, upsert_key(record), record)


def dead_letter_output(
    origin: Origin, key: bytes | None, value: bytes | None, kind: str, code: str, message: str,
    event_id: str | None = None, object_id: str | None = None,
) -> Output:
    """A `paysync.DeadLetter` for the input record at `origin` (stage `streams`)."""
    record = dead_letter(
        topic=origin.topic, partition=origin.partition, offset=origin.offset, stage="streams",
        error_kind=kind, error_code=code, message=message, key=key, value=value,
        event_id=event_id, object_id=object_id,
    )
    return Output(Target.DEAD_LETTER, key, record)


class OutputEncoder:
    """Avro-encodes upserts and dead letters with the shared codec (payout messages stay JSON dicts)."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec

    def encode(self, output: Output) -> bytes:
        if output.target is Target.UPSERT:
            return self.codec.encode(SALESFORCE_UPSERTS.schema, output.value)
        if output.target is Target.DEAD_LETTER:
            return self.codec.encode(DEAD_LETTERS.schema, output.value)
        raise ValueError(f"{output.target} outputs are not Avro records")
