"""When the sink writes a batch: the flush decision, pure (issue 16, "latency that adapts").

Adaptive (`PAYSYNC_SINK_ADAPTIVE`, the default): a new record is written at once when no Salesforce write is in
flight, after a short gather that takes what the consumer already has ready. The loop's writes are synchronous, so
while one runs, messages pile up in the consumer's local queue; the gather after it takes them all and the next
batch is as large as the load made it. Latency is low at low load and batches are full at high load. A running Bulk
2.0 job counts as a write in flight (new records then wait for the size or age bound, as without adaptation).

Early writes are paced by the daily API budget (`CallPace`): each batch costs its own calls, so back-to-back small
batches could spend a day's budget in hours. They may spend it no faster than it lasts the day, plus a peak's
allowance of `burst_s` seconds of that pace (`PAYSYNC_SINK_PACE_BURST_S`, 600 s: about 660 calls, 0.7 % of a
100,000-call day); beyond that, records wait for the size or age bound as without adaptation. The allowance cannot
spend the limit itself: the sink pauses at `PAYSYNC_SINK_BUDGET_SHARE` of it, read from Salesforce's own count.

Always: a batch is written when it reaches the count or byte limit, or when a record reaches the max age (the upper
bound of the wait). Records that only wait for a retry time never trigger an early write on their own: they ride
the next batch (or force one after the max age), so scattered retries do not each cost a call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Step(Enum):
    """What the consumer loop does next."""

    WAIT = "wait"  # block for messages, up to the next age deadline
    GATHER = "gather"  # take what the consumer has ready (waiting at most the gather window), then decide again
    FLUSH = "flush"  # write the ready records now


@dataclass(frozen=True)
class Readiness:
    """The pending records as the decision sees them (`Batcher.readiness`)."""

    ready: int  # records whose retry time has come
    fresh: int  # …of which never tried (new data, not a retry waiting for its turn)
    full: bool  # the ready records reach the count or byte limit
    aged: bool  # a ready record reached the max age


@dataclass(frozen=True)
class Decision:
    """The next step and, for a flush, why (`full`, `age`, `idle`): the `paysync_sink_flushes` label."""

    step: Step
    reason: str = ""


DAY_S = 86_400.0


class CallPace:
    """A token bucket of API calls for early writes: refilled at `share` of the daily limit per day, holding
    `burst_s` seconds of it. Unknown limit (`max_calls` 0): no pacing."""

    def __init__(self, share: float, burst_s: float) -> None:
        self.share = share
        self.burst_s = burst_s
        self.tokens: float | None = None  # full until the first refill
        self.at = 0.0

    def _refill(self, now: float, max_calls: int) -> float:
        rate = max_calls * self.share / DAY_S
        cap = rate * self.burst_s
        self.tokens = cap if self.tokens is None else min(cap, self.tokens + max(0.0, now - self.at) * rate)
        self.at = now
        return self.tokens

    def allows(self, now: float, max_calls: int) -> bool:
        """May an early write happen now?"""
        return max_calls <= 0 or self._refill(now, max_calls) > 0

    def spent(self, calls: int, now: float, max_calls: int) -> None:
        """A batch cost `calls` (any batch: the age- and size-bound ones draw on the same budget)."""
        if max_calls > 0:
            self.tokens = self._refill(now, max_calls) - calls


def decide(r: Readiness, *, adaptive: bool, in_flight: bool, drained: bool, paused: bool) -> Decision:
    """The next step of the loop.

    `adaptive`: early writes are on and allowed now (the setting, the budget's pace); `in_flight`: a Salesforce
    write is running (a Bulk job); `drained`: the last read from the consumer came back short, so nothing more is
    ready right now; `paused`: the API budget is spent (nothing is written).
    """
    if paused or r.ready == 0:
        return Decision(Step.WAIT)
    if r.full:
        return Decision(Step.FLUSH, "full")
    if r.aged:
        return Decision(Step.FLUSH, "age")
    if not adaptive or r.fresh == 0 or in_flight:
        return Decision(Step.WAIT)
    if not drained:
        return Decision(Step.GATHER)
    return Decision(Step.FLUSH, "idle")
