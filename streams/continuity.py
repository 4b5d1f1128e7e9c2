"""Continuity: every record of an assigned input partition reaches the processor, in order, with no hole.

faust-streaming 0.15 can skip records of an assigned partition around a rebalance or a table recovery and then
commit the offsets after them: lost for good, silently. Seen in this project's tests: when the flow stops, the
rest of a fetched batch is dropped, and Faust's seek back to the committed offsets leaves a partition with no
committed offset (or 0) where the fetcher stood (aiokafka's `seek_to_committed` seeks only to offsets > 0), so
reading resumes after the dropped records; it can also stop fetching a partition altogether. The worker therefore
keeps, per assigned partition, the next offset it must handle: where the assignment's reading starts (the
committed offset, or the log start when nothing is committed), then one past each record it handles. A record
above that offset reveals a hole; the worker reads the missing records from the broker and handles them first,
in order, before the record that revealed the hole is acknowledged, so no commit can pass them. A record below
it (Faust reading again after a seek) is handled as usual: the processor recognises what this process handled.
Records skipped at the end of what was fetched have no later record to reveal them: `TailWatch` notices a
partition whose next offset has stayed below its highwater for a while, and the worker seeks the consumer back
to that offset, so they are fetched again.

`Continuity` and `TailWatch` are bookkeeping, without Faust or I/O; `Guard` adds the reads, through an injected
`RecordSource` (`streams.range_reader.RangeReader` in the worker), run in a thread because they block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from streams.range_reader import RawRecord

Partition = tuple[str, int]  # (topic, partition); Faust's TP is one


@dataclass(frozen=True)
class Hole:
    """Offsets `start` ≤ o < `stop` of `tp` that were never handed to the worker; `stop` revealed the hole."""

    tp: Partition
    start: int
    stop: int


class Continuity:
    """The next offset each assigned partition must hand to the processor."""

    def __init__(self) -> None:
        self._next: dict[Partition, int] = {}

    def assign(self) -> None:
        """A new assignment: forget every partition (Faust seeks each one back to its committed offset)."""
        self._next.clear()

    def revoke(self, tps: Iterable[Partition]) -> None:
        for tp in tps:
            self._next.pop(tp, None)

    def next_offset(self, tp: Partition) -> int | None:
        return self._next.get(tp)

    def knows(self, tp: Partition) -> bool:
        """Whether `tp` has a next offset (else `hole` needs the assignment's start)."""
        return tp in self._next

    def hole(self, tp: Partition, offset: int, start: int | None = None) -> Hole | None:
        """The hole a record at `offset` reveals, if any.

        `start` is where reading began in this assignment; it is used while `tp` has no next offset yet
        (None: unknown, nothing can be said about the first record).
        """
        expected = self._next.get(tp, start)
        if expected is None or offset <= expected:
            return None
        return Hole(tp, expected, offset)

    def handled(self, tp: Partition, offset: int) -> None:
        """The record at `offset` was handed to the processor; a lower offset (a re-read) changes nothing."""
        after = offset + 1
        if after > self._next.get(tp, -1):
            self._next[tp] = after


class TailWatch:
    """Partitions with records past their next offset and no record handled for `after_s` seconds.

    `check` gets each partition's next offset (None: unknown) and highwater (None: unknown) and reports
    (partition, next offset) for each one that has waited `after_s` since its next offset last changed or
    it was last reported; a partition with nothing waiting, or absent, starts afresh.
    """

    def __init__(self, after_s: float) -> None:
        if after_s <= 0:
            raise ValueError(f"after_s must be > 0, not {after_s}")
        self.after_s = after_s
        self._since: dict[Partition, tuple[int, float]] = {}  # next offset, since when

    def reset(self) -> None:
        """Forget every partition (nothing is handled during a table recovery, by design)."""
        self._since.clear()

    def check(self, now: float, positions: Mapping[Partition, int | None],
              highwaters: Mapping[Partition, int | None]) -> list[tuple[Partition, int]]:
        behind: list[tuple[Partition, int]] = []
        for tp in list(self._since):
            if tp not in positions:
                del self._since[tp]
        for tp, position in positions.items():
            highwater = highwaters.get(tp)
            if position is None or highwater is None or highwater <= position:
                self._since.pop(tp, None)
                continue
            last = self._since.get(tp)
            if last is None or last[0] != position:
                self._since[tp] = (position, now)
            elif now - last[1] >= self.after_s:
                behind.append((tp, position))
                self._since[tp] = (position, now)
        return behind


class RecordSource(Protocol):
    """Blocking reads of one partition (raising `streams.range_reader.RangeReadError` when they fail)."""

    def read(self, topic: str, partition: int, start: int, stop: int) -> list[RawRecord]: ...


class Guard:
    """The records to hand to the processor before the one at (`tp`, `offset`): those the consumer skipped.

    `start_of(tp)` is where the consumer began reading `tp` in this assignment: the committed offset, or the
    log start (or any offset before it: the source reads from the log start) when nothing is committed.
    """

    def __init__(self, continuity: Continuity, source: RecordSource,
                 start_of: Callable[[Partition], int]) -> None:
        self.continuity = continuity
        self.source = source
        self.start_of = start_of

    async def missing(self, tp: Partition, offset: int) -> list[RawRecord]:
        """The records the consumer skipped before `offset`, in order (empty: nothing was skipped).

        Raises `RangeReadError` when they cannot be read; the caller must then not acknowledge the record at
        `offset`. The caller calls `continuity.handled` for each record it hands on, these ones included.
        """
        start = None if self.continuity.knows(tp) else self.start_of(tp)
        hole = self.continuity.hole(tp, offset, start)
        if hole is None:
            return []
        return await asyncio.to_thread(self.source.read, tp[0], tp[1], hole.start, hole.stop)
