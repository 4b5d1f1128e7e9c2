"""Stall watch: notices assigned input partitions that have records waiting and make no progress.

Faust can stop fetching or processing a partition after a rebalance and only log "slow processing" about it
(faust-streaming #175, #523, #629), and its producer can stop delivering after a broker restart, which
stops commits. `StallWatch` is the bookkeeping for a watchdog, without Faust or I/O: the worker writes each
partition's progress marker into `processed` (the committed offset - 1: a record counts once its outputs
are acknowledged); a timer passes it each partition's highwater and start offset (both from the broker,
either may be unknown) and the time, and acts on the partitions it reports as stalled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Partition = tuple[str, int]  # (topic, partition); Faust's TP is one


@dataclass(frozen=True)
class Waiting:
    """A watched partition with records waiting: `highwater` is above the next offset it would handle."""

    tp: Partition
    processed: int | None  # the progress marker: last committed offset - 1; None: nothing committed yet
    start: int | None  # the partition's log start offset; None: unknown
    highwater: int
    seconds: float  # how long it has been waiting without progress
    stalled: bool  # `seconds` reached the timeout (never when the watch is disabled)


class StallWatch:
    """Per watched partition, how long it has had records waiting with no progress.

    A partition is *waiting* when its highwater is known and above its floor: the higher of the offset after the
    last one processed and its start offset (unknown floor: not waiting). Its clock restarts whenever it is not
    waiting, its processed offset changed since the last `check`, it is assigned, or `hold` is called (table
    recovery). `check` marks a partition stalled once its clock is `timeout_s` old; `timeout_s == 0` disables that.
    """

    def __init__(self, timeout_s: float) -> None:
        if timeout_s < 0:
            raise ValueError(f"timeout_s must be >= 0, not {timeout_s}")
        self.timeout_s = timeout_s
        self.processed: dict[Partition, int] = {}  # progress markers, written by the worker before each check
        self._since: dict[Partition, float] = {}  # the watched partitions and the start of their clocks
        self._seen: dict[Partition, int | None] = {}  # processed offsets at the last check

    @property
    def watched(self) -> frozenset[Partition]:
        return frozenset(self._since)

    def assign(self, tps: Iterable[Partition], now: float) -> None:
        """Watch exactly `tps` from `now` on: clocks restart and processed offsets are forgotten (Faust seeks
        every assigned partition back to its committed offset after a rebalance)."""
        self._since = dict.fromkeys(tps, now)
        self.processed.clear()
        self._seen.clear()

    def hold(self, now: float) -> None:
        """Restart every clock: nothing is processed while Faust restores the tables, by design."""
        self._since = dict.fromkeys(self._since, now)

    def check(self, now: float, highwaters: Mapping[Partition, int | None],
              starts: Mapping[Partition, int | None]) -> list[Waiting]:
        """The watched partitions with records waiting at `now`, longest wait first."""
        waiting: list[Waiting] = []
        for tp in self._since:
            processed = self.processed.get(tp)
            progressed = processed != self._seen.get(tp)
            self._seen[tp] = processed
            start = starts.get(tp)
            after = None if processed is None else processed + 1
            floor = max((f for f in (after, start) if f is not None), default=None)
            highwater = highwaters.get(tp)
            if highwater is None or floor is None or highwater <= floor:
                self._since[tp] = now
                continue
            if progressed:
                self._since[tp] = now
            seconds = now - self._since[tp]
            waiting.append(Waiting(tp, processed, start, highwater, seconds,
                                   stalled=self.timeout_s > 0 and seconds >= self.timeout_s))
        return sorted(waiting, key=lambda w: -w.seconds)
