"""The worker's timer over its assigned partitions: a skipped tail is fetched again, a stalled partition ends it.

`streams.watchdog.StallWatch` and `streams.continuity.TailWatch` are the bookkeeping; this module feeds them
the broker's offsets and acts: a consumer seek back to skipped records (on Faust's consumer thread,
`streams.faust_internals.seek`), or exit status 75 (the next owner replays what was not committed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import faust
from faust.types import TP

from streams.continuity import Continuity, Partition, TailWatch
from streams.delivery import exit_now
from streams.faust_internals import committed_offsets, seek
from streams.intake import EXIT_STALLED
from streams.metrics import StreamMetrics
from streams.watchdog import StallWatch, Waiting

log = logging.getLogger("paysync.streams")

OFFSETS_TIMEOUT_S = 10.0  # Faust's consumer thread takes offset and seek calls between fetches (a 1 s long poll)
Offsets = Mapping[Partition, int | None]


async def partition_offsets(app: faust.App, tps: set[Partition]) -> tuple[Offsets, Offsets]:
    """Broker highwaters and log start offsets of `tps`; empty maps when the broker does not answer."""
    consumer = app.consumer
    try:
        highwaters, earliest = await asyncio.wait_for(
            asyncio.gather(consumer.highwaters(*(TP(*tp) for tp in tps)),
                           consumer.earliest_offsets(*(TP(*tp) for tp in tps))), OFFSETS_TIMEOUT_S,
        )
    except Exception as exc:  # noqa: BLE001 - no answer is no evidence of a stall
        log.warning("stall watch: no offsets from the broker", extra={"error": f"{type(exc).__name__}: {exc}"})
        return {}, {}
    return cast(Offsets, highwaters), cast(Offsets, earliest)  # keyed by TP, a (topic, partition) tuple


def report_stalls(waiting: list[Waiting], timeout_s: float) -> None:
    """Exit (status 75) when any partition is stalled; Faust cannot be relied on to stop cleanly then."""
    stalled = [w for w in waiting if w.stalled]
    if not stalled:
        return
    log.critical("input partitions have records waiting and made no progress; exiting so that another worker "
                 "takes them over", extra={"timeout_s": timeout_s, "stalled": [
                     {"topic": w.tp[0], "partition": w.tp[1], "processed": w.processed, "start": w.start,
                      "highwater": w.highwater, "seconds": round(w.seconds, 1)} for w in stalled]})
    exit_now(EXIT_STALLED)


class PartitionWatch:
    """What the `partition_watch` timer does; `agent_inputs` maps the watched topics to their metric labels."""

    def __init__(self, app: faust.App, continuity: Continuity, metrics: StreamMetrics,
                 agent_inputs: Mapping[str, str], stall_timeout_s: float, tail_check_s: float) -> None:
        self._app = app
        self._continuity = continuity
        self._metrics = metrics
        self._inputs = agent_inputs
        self.stall_timeout_s = stall_timeout_s
        self.watch = StallWatch(stall_timeout_s)
        self._tails = TailWatch(tail_check_s)

    @property
    def interval_s(self) -> float:
        """How often the timer runs: often enough to notice a stall in about a sixth of the timeout."""
        timeout = self.stall_timeout_s
        return max(1.0, min(5.0, timeout / 6)) if timeout > 0 else 5.0

    def assigned(self, assigned: set[Any]) -> None:
        """A new assignment: watch its partitions of the agents' topics from now on."""
        self.watch.assign((tp for tp in assigned if tp.topic in self._inputs), time.monotonic())

    def revoked(self, revoked: set[Any]) -> None:
        self.watch.assign(self.watch.watched - revoked, time.monotonic())

    async def tick(self) -> None:
        """Seek back to skipped tails, then end the process when a partition is stalled.

        Nothing is handled during a table recovery, by design: it does not count.
        """
        watch = self.watch
        if self._app.in_recovery or not watch.watched:
            watch.hold(time.monotonic())
            self._tails.reset()
            return
        # progress is what Faust committed: it moves only once a record's outputs are acknowledged, so a
        # producer that stopped delivering stalls a partition as surely as a fetcher that stopped fetching
        committed = committed_offsets(self._app)
        for tp in watch.watched:
            offset = committed.get(TP(*tp))
            if offset is not None:
                watch.processed[tp] = offset - 1
        highwaters, starts = await partition_offsets(self._app, set(watch.watched))
        now = time.monotonic()
        await self.seek_back_tails(now, committed, highwaters, starts)
        if self.stall_timeout_s > 0:
            waiting = watch.check(now, highwaters, starts)
            for topic_name, label in self._inputs.items():
                self._metrics.waiting_seconds.labels(label).set(
                    max((w.seconds for w in waiting if w.tp[0] == topic_name), default=0.0))
            report_stalls(waiting, self.stall_timeout_s)

    async def seek_back_tails(self, now: float, committed: Mapping[TP, int | None], highwaters: Offsets,
                              starts: Offsets) -> None:
        """Seek the consumer back to each tail that `TailWatch` reports (the skipped records are fetched again)."""
        continuity = self._continuity
        positions = {tp: continuity.next_offset(tp) if continuity.knows(tp)
                     else (committed.get(TP(*tp)) or starts.get(tp)) for tp in self.watch.watched}
        for tp, offset in self._tails.check(now, positions, highwaters):
            log.warning("continuity: records past the last one handled have waited with nothing handled; seeking "
                        "the consumer back to them", extra={"topic": tp[0], "partition": tp[1], "offset": offset,
                                                             "highwater": highwaters.get(tp)})
            if await seek_back(self._app, tp, offset):
                self._metrics.child(self._metrics.rewinds, self._inputs[tp[0]]).inc()


async def seek_back(app: faust.App, tp: Partition, offset: int) -> bool:
    """Seek the consumer's `tp` to `offset` on the consumer's thread; False (logged) when that did not happen.

    A partition revoked since it was checked is not sought: its next owner reads it from the committed offset.
    A consumer thread that does not take the call in time leaves the tail to the next check, and the stall
    watch after it still runs (should the seek run late, Faust may drop re-read records below its read offset;
    the first one above it reveals them to the continuity guard).
    """
    try:
        sought = await asyncio.wait_for(seek(app, TP(*tp), offset), OFFSETS_TIMEOUT_S)
    except TimeoutError:
        log.warning("continuity: the consumer thread did not take the seek in time; the next check retries",
                    extra={"topic": tp[0], "partition": tp[1], "timeout_s": OFFSETS_TIMEOUT_S})
        return False
    if not sought:
        log.info("continuity: the partition is no longer assigned; not sought", extra={
            "topic": tp[0], "partition": tp[1]})
    return sought
