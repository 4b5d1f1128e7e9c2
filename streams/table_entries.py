"""The stream worker's tables, the format of their entries, and who wrote an entry (the crash-safety rules).

Tables (values are JSON-able; the trailing `partition, offset` is the writer's origin):
- `versions`: Stripe object id -> [encoded order-guard version, partition, offset] (kept for good: the version
              holds the event id, so it is also what drops a copy of the event that wrote it).
- `bts`:      balance transaction id -> [has payout, available, has count, payout id, status, count,
              partition, offset].
- `payouts`:  payout id -> {amount, currency, version, meta, members{bt id: [amount, fee, net, currency]},
              expected, reconciled_at, at: [partition, offset] of the internal payout-topic message that wrote it}.

Who wrote an entry, seen from the input record being handled (`streams.processor`'s docstring has the argument):
EARLIER (the state before this record: ordinary rules), REPLAYED (this very record, in an earlier process:
re-emit its outputs) or LATER (an uncommitted later record of the same partition: it re-emits, this one is stale).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from streams.outputs import Origin

SIGNATURE_LEN = 6


@dataclass(frozen=True)
class Retention:
    """How long table entries keep their details (milliseconds): a reconciled payout's members."""

    payout_ms: int = 72 * 3600 * 1000


@dataclass
class Tables:
    """The three tables the processor reads and writes."""

    versions: MutableMapping[str, Any] = field(default_factory=dict)
    bts: MutableMapping[str, Any] = field(default_factory=dict)
    payouts: MutableMapping[str, Any] = field(default_factory=dict)


class Writer(Enum):
    """Who wrote a table entry, seen from the input record now being handled."""

    EARLIER = "earlier"
    REPLAYED = "replayed"
    LATER = "later"


def writer_of(partition: int | None, offset: int | None, origin: Origin, own: bool, handled_here: bool) -> Writer:
    """Place the writer of an entry relative to `origin`; `own`: the entry's content is this record's."""
    if partition is None or offset is None or partition != origin.partition:
        return Writer.EARLIER
    if offset == origin.offset:
        return Writer.REPLAYED if own and not handled_here else Writer.EARLIER
    return Writer.LATER if offset > origin.offset else Writer.EARLIER


class Handled:
    """Per (topic, partition), the [lowest, highest] offset this process handled (a contiguous range: a partition is
    read in order, with no hole — `streams.continuity` fills the ones Faust leaves — and after a rebalance resumes
    at a committed offset ≥ lowest)."""

    def __init__(self) -> None:
        self._spans: dict[tuple[str, int], list[int]] = {}

    def begin(self, origin: Origin) -> bool:
        """Record that `origin` is being handled; True when this process already handled it (a redelivery)."""
        slot = (origin.topic, origin.partition)
        span = self._spans.get(slot)
        offset = origin.offset
        if span is None:
            self._spans[slot] = [offset, offset]
            return False
        seen = span[0] <= offset <= span[1]
        if offset < span[0]:
            span[0] = offset
        elif offset > span[1]:
            span[1] = offset
        return seen


def version_parts(value: Any) -> tuple[str, int, int]:
    """(encoded version, partition, offset) of a versions entry."""
    return str(value[0]), int(value[1]), int(value[2])


def bt_signature(bt: dict[str, Any]) -> list[Any]:
    """Rank first (what a later listing adds: payout, availability, count), then the values themselves."""
    return [
        bt.get("payout_id") is not None, bt.get("status") == "available", bt.get("payout_transaction_count") is not None,
        bt.get("payout_id"), bt.get("status"), bt.get("payout_transaction_count"),
    ]


def bt_parts(value: Any) -> tuple[list[Any], int, int]:
    """(signature, partition, offset) of a bts entry."""
    items = list(value)
    return items[:SIGNATURE_LEN], int(items[SIGNATURE_LEN]), int(items[SIGNATURE_LEN + 1])


def pack_member(member: dict[str, Any]) -> list[Any]:
    """A payout member of a payout-join message as stored: [amount, fee, net, currency]."""
    return [member.get("amount"), member.get("fee"), member.get("net"), member.get("currency")]


def unpack_member(bt_id: str, stored: list[Any]) -> dict[str, Any]:
    """A stored member as the mapper takes it."""
    amount, fee, net, currency = stored
    return {"balance_transaction_id": bt_id, "amount": amount, "fee": fee, "net": net, "currency": currency}
