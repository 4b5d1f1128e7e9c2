"""Where a poll starts listing (`created >= since`): a short look back on most polls, the full one now and then.

Listing objects can show an object a little after its `created` second (late visibility), so a poll re-lists
some time behind its cursor and drops what it already published. Re-listing the whole `overlap_s` window
on every poll would cost one list call per 100 objects of that window each time: at a few hundred objects
a second and a 300 s window, over a thousand calls a poll. So ordinary polls look back `recent_overlap_s`
(same-second ties and small delays), and a deep poll every `deep_every_s` (and the first poll of a process)
looks back the whole `overlap_s`: an object that shows up late is still published, within `deep_every_s`.
"""

from __future__ import annotations


class ListWindow:
    """`since(cursor, now)` for one poller; remembers when its last deep poll was."""

    def __init__(self, overlap_s: int, initial_lookback_s: int, recent_overlap_s: int | None = None,
                 deep_every_s: float = 0.0) -> None:
        """`recent_overlap_s=None` or `deep_every_s=0`: every poll is deep (looks back `overlap_s`)."""
        self.overlap_s = overlap_s
        self.initial_lookback_s = initial_lookback_s
        self.recent_overlap_s = overlap_s if recent_overlap_s is None else min(recent_overlap_s, overlap_s)
        self.deep_every_s = deep_every_s
        self._last_deep: float | None = None

    def since(self, cursor_created: int | None, now: float) -> int:
        """The `created[gte]` of the next listing: behind the cursor, or `initial_lookback_s` before `now`."""
        if not cursor_created:
            self._last_deep = now
            return max(0, int(now) - self.initial_lookback_s)
        deep = self.deep_every_s <= 0 or self._last_deep is None or now - self._last_deep >= self.deep_every_s
        if deep:
            self._last_deep = now
        return max(0, cursor_created - (self.overlap_s if deep else self.recent_overlap_s))
