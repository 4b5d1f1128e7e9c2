"""What the processor asks the worker to produce, and how upserts and dead letters become bytes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from paysync.codec import SINGLE_OBJECT_MAGIC, AvroCodec, CodecError
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


_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_UPSERT_FIELDS = frozenset({
    "sobject", "external_id_field", "external_id", "fields", "parents", "source_event_id", "version",
    "origin_topic", "origin_partition", "origin_offset", "ingested_at",
})
_PARENT_FIELDS = ("relationship", "sobject", "external_id_field", "external_id")


class _NotFast(Exception):
    """The record needs the general encoder (an unexpected type or value: it may well be invalid)."""


def _long(out: bytearray, n: int) -> None:
    """Avro zig-zag varint."""
    if type(n) is not int or not _LONG_MIN <= n <= _LONG_MAX:
        raise _NotFast
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _string(out: bytearray, text: str) -> None:
    if type(text) is not str:
        raise _NotFast
    data = text.encode()
    _long(out, len(data))
    out += data


def _optional_string(out: bytearray, text: str | None) -> None:
    if text is None:
        out.append(0)
    else:
        out.append(2)  # branch 1, zig-zag
        _string(out, text)


def _optional_long(out: bytearray, n: int | None, low: int = _LONG_MIN, high: int = _LONG_MAX) -> None:
    if n is None:
        out.append(0)
        return
    if type(n) is not int or not low <= n <= high:
        raise _NotFast
    out.append(2)
    _long(out, n)


def _upsert_body(record: dict[str, Any]) -> bytes:
    """Avro binary of a `paysync.SalesforceUpsert` (schemas/salesforce_upsert.avsc), field by field.

    Maps and arrays are written as one block then the end marker, as fastavro writes them; any value this
    writer does not recognise raises `_NotFast` so that the general encoder decides (and reports).
    """
    if not record.keys() <= _UPSERT_FIELDS:
        raise _NotFast
    out = bytearray()
    _string(out, record["sobject"])
    _string(out, record["external_id_field"])
    _string(out, record["external_id"])
    fields = record["fields"]
    if type(fields) is not dict:
        raise _NotFast
    if fields:
        _long(out, len(fields))
        for name, value in fields.items():
            _string(out, name)
            if value is None:
                out.append(0)
            elif value is True:
                out += b"\x02\x01"
            elif value is False:
                out += b"\x02\x00"
            elif type(value) is int:
                out.append(4)
                _long(out, value)
            elif type(value) is str:
                out.append(6)
                _string(out, value)
            else:
                raise _NotFast
    out.append(0)
    parents = record.get("parents", [])
    if type(parents) is not list:
        raise _NotFast
    if parents:
        _long(out, len(parents))
        for parent in parents:
            if type(parent) is not dict or len(parent) != len(_PARENT_FIELDS):
                raise _NotFast
            for name in _PARENT_FIELDS:
                _string(out, parent[name])
    out.append(0)
    _optional_string(out, record.get("source_event_id"))
    _string(out, record["version"])
    _optional_string(out, record.get("origin_topic"))
    _optional_long(out, record.get("origin_partition"), _INT_MIN, _INT_MAX)
    _optional_long(out, record.get("origin_offset"))
    _optional_long(out, record.get("ingested_at"))
    return bytes(out)


class OutputEncoder:
    """Avro-encodes upserts and dead letters with the shared codec's wire format (payout messages stay dicts).

    Upserts, the hot path, go through a direct writer for their one schema when the codec writes Avro
    single-object encoding (checked at start-up against the codec on a sample record, byte for byte);
    anything unusual, and every other case, goes through `AvroCodec.encode`.
    """

    _SAMPLE: dict[str, Any] = {
        "sobject": "Account", "external_id_field": "Stripe_Customer_Id__c", "external_id": "cus_é1",
        "fields": {"Name": "Zoë", "N__c": -129, "B__c": True, "F__c": False, "X__c": None},
        "parents": [{"relationship": "A__r", "sobject": "Account", "external_id_field": "E__c", "external_id": "1"}],
        "source_event_id": "evt_1", "version": "1:2.3:evt_1", "origin_topic": "t", "origin_partition": 3,
        "origin_offset": 1 << 40, "ingested_at": None,
    }

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec
        self._upsert_header: bytes | None = None
        try:
            reference = codec.encode(SALESFORCE_UPSERTS.schema, self._SAMPLE)
            header = reference[: len(reference) - len(_upsert_body(self._SAMPLE))]
        except (CodecError, _NotFast):
            return
        if header + _upsert_body(self._SAMPLE) == reference and header.startswith(SINGLE_OBJECT_MAGIC):
            self._upsert_header = header

    def encode(self, output: Output) -> bytes:
        if output.target is Target.UPSERT:
            if self._upsert_header is not None:
                try:
                    return self._upsert_header + _upsert_body(output.value)
                except (_NotFast, KeyError):
                    pass
            return self.codec.encode(SALESFORCE_UPSERTS.schema, output.value)
        if output.target is Target.DEAD_LETTER:
            return self.codec.encode(DEAD_LETTERS.schema, output.value)
        raise ValueError(f"{output.target} outputs are not Avro records")
