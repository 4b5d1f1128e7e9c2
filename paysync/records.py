"""The Avro records that cross topics, typed: one `TypedDict` per schema in `schemas/` (field for field).

Timestamps (`timestamp-millis`) are epoch-millisecond ints in Python (the codec keeps logical types as
documentation). `AvroRecord` names a schema together with its Python type, so `AvroCodec.encode_record` /
`decode_record` are typed end to end; a test checks each TypedDict against its `.avsc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypedDict, TypeVar, Union

EventSource = Literal["webhook", "poll", "backfill"]
FieldValue = Union[bool, int, str, None]  # the `fields` map's value union: ["null", "boolean", "long", "string"]


class StripeEventEnvelope(TypedDict):
    """`paysync.StripeEventEnvelope` on `stripe.events`: one Stripe event as received, with where it came from."""

    event_id: str
    event_type: str
    created: int
    api_version: str | None
    livemode: bool
    account: str | None
    source: EventSource
    received_at: int
    object_id: str
    object_type: str
    thin: bool
    raw_event: str


class ParentReference(TypedDict):
    """`paysync.ParentReference`: a lookup of a parent record by its external id (`Account__r` …)."""

    relationship: str
    sobject: str
    external_id_field: str
    external_id: str


class SalesforceUpsert(TypedDict):
    """`paysync.SalesforceUpsert` on `salesforce.upserts`: one record to upsert by external id."""

    sobject: str
    external_id_field: str
    external_id: str
    fields: dict[str, FieldValue]
    parents: list[ParentReference]
    source_event_id: str | None
    version: str
    origin_topic: str | None
    origin_partition: int | None
    origin_offset: int | None
    ingested_at: int | None


class DeadLetter(TypedDict):
    """`paysync.DeadLetter` on `paysync.dlq`: a record that failed, why, and where it came from."""

    original_key: bytes | None
    original_value: bytes | None
    topic: str
    partition: int
    offset: int
    stage: str
    error_kind: str
    error_code: str
    message: str
    event_id: str | None
    object_id: str | None
    first_failure_at: int
    last_failure_at: int
    attempts: int


R = TypeVar("R")


@dataclass(frozen=True)
class AvroRecord(Generic[R]):
    """A schema's full name bound to the Python type of its records."""

    schema: str


ENVELOPE: AvroRecord[StripeEventEnvelope] = AvroRecord("paysync.StripeEventEnvelope")
UPSERT: AvroRecord[SalesforceUpsert] = AvroRecord("paysync.SalesforceUpsert")
DEAD_LETTER: AvroRecord[DeadLetter] = AvroRecord("paysync.DeadLetter")
