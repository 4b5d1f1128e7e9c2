"""Which offsets may be committed: per partition, everything below the oldest unfinished message.

A message is finished when its record landed in Salesforce or it was dead-lettered (and the dead
letter was delivered). Offsets arrive in increasing order per partition.
"""

from __future__ import annotations

from collections import deque

TP = tuple[str, int]


class OffsetTracker:
    """Received-but-unfinished offsets per partition, and the last committed position."""

    def __init__(self) -> None:
        self._outstanding: dict[TP, deque[int]] = {}
        self._done: dict[TP, set[int]] = {}
        self._next: dict[TP, int] = {}  # highest received + 1
        self._committed: dict[TP, int] = {}

    def received(self, tp: TP, offset: int) -> None:
        self._outstanding.setdefault(tp, deque()).append(offset)
        self._done.setdefault(tp, set())
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def done(self, tp: TP, offset: int) -> None:
        if tp in self._done:
            self._done[tp].add(offset)

    def commit_point(self, tp: TP) -> int | None:
        """The offset to commit for `tp` (the first unfinished one, or the next to read)."""
        queue = self._outstanding.get(tp)
        if queue is None:
            return None
        done = self._done[tp]
        while queue and queue[0] in done:
            done.discard(queue.popleft())
        return queue[0] if queue else self._next[tp]

    def to_commit(self) -> dict[TP, int]:
        """Partitions whose commit point moved since the last `committed()`."""
        out: dict[TP, int] = {}
        for tp in list(self._outstanding):
            point = self.commit_point(tp)
            if point is not None and point > self._committed.get(tp, -1):
                out[tp] = point
        return out

    def committed(self, points: dict[TP, int]) -> None:
        self._committed.update(points)

    def unfinished(self, tp: TP) -> int:
        return len(self._outstanding.get(tp, ()))

    def forget(self, tp: TP) -> None:
        for table in (self._outstanding, self._done, self._next, self._committed):
            table.pop(tp, None)
