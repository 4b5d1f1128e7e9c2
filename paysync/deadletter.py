"""Building dead letters: the record that failed, why, and where it came from."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from paysync.codec import AvroCodec
from paysync.records import DeadLetter
from paysync.topics import DEAD_LETTERS


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
    """A `paysync.DeadLetter` record, ready for the codec; the message is cut to 4000 characters."""
    now = int(time.time() * 1000)
    return {
        "original_key": key,
        "original_value": value,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "stage": stage,
        "error_kind": error_kind,
        "error_code": error_code,
        "message": message[:4000],
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
