"""Building dead letters: the record that failed, why, and where it came from.

`paysync.dlq` is kept for ever, so a dead letter holds only redacted payloads (`paysync.redact`, issue 18): an
envelope's `raw_event` or a balance transaction's `raw` is redacted and the record re-encoded (producers already
store them redacted: this catches records written before that, or by anything else); other bytes have card
numbers, IBANs and secrets replaced when they hold any. The message is redacted too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from paysync.codec import SINGLE_OBJECT_MAGIC, AvroCodec, CodecError
from paysync.records import DeadLetter
from paysync.redact import RedactionError, redact_json_text, redact_text
from paysync.topics import DEAD_LETTERS


# schema -> the field holding raw Stripe JSON (None: no raw JSON; its strings are scrubbed one by one)
_RAW_FIELDS: dict[str, str | None] = {"paysync.StripeEventEnvelope": "raw_event",
                                      "paysync.StripeBalanceTransaction": "raw", "paysync.SalesforceUpsert": None}
_codec: AvroCodec | None = None


def _scrubbed(value: Any) -> Any:
    """`value` with card numbers, IBANs and secrets replaced in every string it holds (maps and lists walked)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def _safe_raw(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return redact_json_text(raw)
    except RedactionError:
        return redact_text(raw)


def _avro_redacted(value: bytes) -> bytes | None:
    """A paysync Avro record with its raw Stripe JSON redacted and its other strings scrubbed (`value` itself if
    clean), re-encoded so it still decodes; None if it is none of `_RAW_FIELDS`' schemas. Scrubbing the encoded
    bytes instead would change string lengths inside the record and make it undecodable."""
    global _codec
    _codec = _codec or AvroCodec()
    for schema, field in _RAW_FIELDS.items():
        try:
            record = _codec.decode(value, schema)
        except CodecError:
            continue
        safe = {k: (_safe_raw(v) if k == field else _scrubbed(v)) for k, v in record.items()}
        return value if safe == record else _codec.encode(schema, safe)
    return None


def redacted_value(value: bytes | None) -> bytes | None:
    """`value` as a dead letter may keep it: unchanged unless it holds card/bank details, card numbers or secrets."""
    if not value:
        return value
    if value[:2] == SINGLE_OBJECT_MAGIC:
        avro = _avro_redacted(value)
        if avro is not None:
            return avro
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
        safe = redact_text(text)
        return value if safe == text else safe.encode("latin-1", errors="replace")
    try:
        safe = redact_json_text(text)
    except RedactionError:
        safe = redact_text(text)
    return value if safe == text else safe.encode("utf-8")


def dead_letter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    stage: str,
    error_kind: str,
    error_code: str,
    message: str,
    key: bytes | None = None,
    value: bytes | None = None,
    event_id: str | None = None,
    object_id: str | None = None,
    attempts: int = 1,
    first_failure_ms: int | None = None,
) -> DeadLetter:
    """A `paysync.DeadLetter` record, ready for the codec; value and message redacted, the message cut to 4000."""
    now = int(time.time() * 1000)
    return {
        "original_key": key,
        "original_value": redacted_value(value),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "stage": stage,
        "error_kind": error_kind,
        "error_code": error_code,
        "message": redact_text(message[:4000]),
        "event_id": event_id,
        "object_id": object_id,
        "first_failure_at": first_failure_ms or now,
        "last_failure_at": now,
        "attempts": attempts,
    }


def dead_letter(**fields: Any) -> dict[str, Any]:
    """Compatibility: `dead_letter_record` as a plain dict, for streams/sinks until they take `DeadLetter`."""
    return dict(dead_letter_record(**fields))


def encode_dead_letter(codec: AvroCodec, record: Mapping[str, Any], topic_prefix: str = "") -> tuple[str, bytes]:
    """(topic name, encoded value) for producing a dead letter."""
    return DEAD_LETTERS.full_name(topic_prefix), codec.encode(DEAD_LETTERS.schema, record)
