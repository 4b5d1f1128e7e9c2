"""How `paysync dlq` shows a dead letter: the list row, the full view with the original value decoded, the table.

Messages pass through `paysync.logs.scrub` before they are printed (secrets and card numbers never are).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ops.dlq_letters import Letter, letter_time_ms
from ops.kafka_toolkit import format_ms
from paysync.codec import AvroCodec, CodecError
from paysync.logs import scrub

PREVIEW_BYTES = 2048


def summary(letter: Letter) -> dict[str, Any]:
    """The list view of a letter as plain JSON-able values (message scrubbed)."""
    last = letter_time_ms(letter.field("last_failure_at"))
    return {
        "id": letter.ident,
        "time": format_ms(last) if last is not None else None,
        "stage": letter.field("stage"),
        "kind": letter.field("error_kind"),
        "code": letter.field("error_code", letter.problem),
        "origin": {"topic": letter.field("topic"), "partition": letter.field("partition"),
                   "offset": letter.field("offset")},
        "event_id": letter.field("event_id"),
        "object_id": letter.field("object_id"),
        "attempts": letter.field("attempts"),
        "status": letter.status,
        "replayed_by": letter.replayed_by,
        "message": scrub(letter.field("message") or (f"unreadable dead letter: {letter.problem}" if letter.problem else "")),
    }


def _plain(value: Any) -> Any:
    """Avro-decoded values made JSON-able: bytes as UTF-8 text (else hex), datetimes as ISO."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": bytes(value).hex()}
        try:
            return json.loads(text)
        except ValueError:
            return text
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def preview(data: bytes | None, codec: AvroCodec) -> dict[str, Any]:
    """The original value for display: decoded when it is Avro, else a UTF-8 or hex preview."""
    if data is None:
        return {"format": "none"}
    try:
        return {"format": "avro", "record": _plain(codec.decode(data))}
    except CodecError as exc:
        reason = exc.code
    head = data[:PREVIEW_BYTES]
    try:
        return {"format": "text", "not_avro": reason, "bytes": len(data), "text": head.decode("utf-8")}
    except UnicodeDecodeError:
        return {"format": "binary", "not_avro": reason, "bytes": len(data), "hex": head[:256].hex()}


def detail(letter: Letter, codec: AvroCodec) -> dict[str, Any]:
    """Everything about one letter: the list view plus the original key and decoded value."""
    out = summary(letter)
    out["first_failure"] = format_ms(ms) if (ms := letter_time_ms(letter.field("first_failure_at"))) is not None else None
    key = letter.field("original_key")
    out["original_key"] = _plain(key) if key is not None else None
    out["original_value"] = preview(letter.field("original_value"), codec)
    return out


def table(rows: Sequence[dict[str, Any]], out: Any) -> None:
    head = f"{'ID':<10} {'TIME':<24} {'STAGE':<9} {'CODE':<24} {'ORIGIN':<36} {'EVENT ID':<30} {'STATUS':<8} MESSAGE"
    out.write(head + "\n")
    for r in rows:
        o = r["origin"]
        origin = f"{o['topic']}/{o['partition']}/{o['offset']}"
        msg = (r["message"] or "").replace("\n", " ")
        out.write(
            f"{r['id']:<10} {r['time'] or '-':<24} {r['stage'] or '-':<9} {str(r['code'] or '-')[:24]:<24} "
            f"{origin[:36]:<36} {(r['event_id'] or '-')[:30]:<30} {r['status']:<8} {msg[:80]}\n"
        )
