"""The dead-letter topic as `paysync dlq` sees it: letters with their replay markers and resolved offsets.

See `ops.dlq` for the bookkeeping: a replayed letter has a MARKER (a `paysync.DeadLetter` with
`stage="ops"`, `error_kind="replayed"`, pointing at the letter) in its partition; resolved letters are those
below the committed offsets of the group `PAYSYNC_DLQ_RESOLVED_GROUP`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from ops.kafka_toolkit import KafkaTool, OpsSettings, Range, Redriver, ToolError, read_ranges
from paysync.codec import AvroCodec, CodecError
from paysync.deadletter import dead_letter_record
from paysync.records import DEAD_LETTER, DeadLetter
from paysync.topics import DEAD_LETTERS

MARKER_STAGE = "ops"
MARKER_KIND = "replayed"
MARKER_CODE = "REPLAYED"


@dataclass
class Letter:
    """One dead letter as read from the topic, with its bookkeeping status."""

    partition: int
    offset: int
    key: bytes | None
    record: DeadLetter | None  # None when the value is not a readable DeadLetter
    problem: str | None = None
    replayed_by: str | None = None  # PARTITION:OFFSET of the marker
    resolved: bool = False

    @property
    def ident(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def status(self) -> str:
        return "resolved" if self.resolved else "replayed" if self.replayed_by else "open"

    def field(self, name: str, default: Any = None) -> Any:
        """A field of the letter's record (`default` when unreadable or null-less absent)."""
        return cast(Mapping[str, Any], self.record or {}).get(name, default)


def letter_time_ms(value: Any) -> int | None:
    """A timestamp-millis field (fastavro gives datetimes) as epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value) if isinstance(value, int) else None


def _is_marker(record: DeadLetter | None, dlq_topic: str) -> bool:
    return record is not None and record["stage"] == MARKER_STAGE and record["error_kind"] == MARKER_KIND \
        and record["topic"] == dlq_topic


def parse_ident(text: str) -> tuple[int, int]:
    """`PARTITION:OFFSET` → (partition, offset)."""
    part, sep, off = text.partition(":")
    if not sep or not part.isdigit() or not off.isdigit():
        raise ToolError(f"name a dead letter as PARTITION:OFFSET (as `paysync dlq list` prints), not {text!r}")
    return int(part), int(off)


class DeadLetterStore:
    """Reads the dead-letter topic with its replay markers and resolved offsets."""

    def __init__(self, settings: OpsSettings) -> None:
        self.settings = settings
        self.conf = settings.kafka.confluent_config()
        self.topic = DEAD_LETTERS.full_name(settings.topics.prefix)
        self.group = settings.dlq_resolved_group
        self.codec = AvroCodec(settings.kafka.schema_registry_url)
        self.tool = KafkaTool(self.conf, settings.ops_request_timeout_s)

    def close(self) -> None:
        self.tool.close()

    def ranges(self) -> list[Range]:
        """Every stored offset of every partition, as of now."""
        out = []
        for p in self.tool.partitions(self.topic):
            low, high = self.tool.watermarks(self.topic, p)
            out.append(Range(p, low, high))
        return out

    def resolved_offsets(self, partitions: Sequence[int]) -> dict[int, int]:
        """Per partition, the first offset not resolved yet (0 when nothing was purged)."""
        return {p: o or 0 for p, o in self.tool.committed(self.group, self.topic, partitions).items()}

    def letters(self) -> list[Letter]:
        """Every dead letter (markers excluded) in partition, offset order, with status."""
        ranges = self.ranges()
        resolved = self.resolved_offsets([r.partition for r in ranges])
        letters: dict[tuple[int, int], Letter] = {}
        for msg in read_ranges(self.conf, self.topic, ranges, self.settings.ops_idle_timeout_s):
            record: DeadLetter | None = None
            problem: str | None = None
            try:
                record = self.codec.decode_record(DEAD_LETTER, msg.value(), self.topic)
            except CodecError as exc:
                problem = exc.code
            partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            if record is not None and _is_marker(record, self.topic):
                target = letters.get((int(record["partition"]), int(record["offset"])))
                if target is not None:
                    target.replayed_by = f"{partition}:{offset}"
                continue
            key = msg.key()
            letters[(partition, offset)] = Letter(
                partition, offset, key.encode() if isinstance(key, str) else key, record, problem,
                resolved=offset < resolved.get(partition, 0),
            )
        return [letters[k] for k in sorted(letters)]

    def mark_replayed(self, letters: Sequence[Letter], note: str) -> None:
        """Append a replay marker for each letter, in the letter's partition."""
        out = Redriver(self.conf)
        for letter in letters:
            marker = dead_letter_record(
                topic=self.topic, partition=letter.partition, offset=letter.offset, stage=MARKER_STAGE,
                error_kind=MARKER_KIND, error_code=MARKER_CODE, message=note, key=letter.key,
                event_id=letter.field("event_id"), object_id=letter.field("object_id"),
            )
            out.send(self.topic, letter.partition, letter.key, self.codec.encode_record(DEAD_LETTER, marker), [])
        out.finish(max(self.settings.ops_idle_timeout_s, 30.0))

    def resolve(self, offsets: dict[int, int]) -> None:
        """Commit resolved offsets (first unresolved offset per partition)."""
        self.tool.commit(self.group, self.topic, offsets)
