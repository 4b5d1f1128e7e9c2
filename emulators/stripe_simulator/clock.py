"""The simulated clock: scenario seconds mapped onto unix `created` times.

`fixed`: `created = start + floor(scenario_time)`; deterministic for a seed (the default).
`realtime`: `created` is the wall clock when the event is emitted (never going backwards), for demos whose
pipeline compares `created` with now; the event stream is then no longer byte-identical across runs.
"""

from __future__ import annotations

import datetime as dt
import time


def default_start_time() -> int:
    """Midnight UTC one day before today: fixed for a whole day, near enough to now for the 30-day window."""
    today = dt.datetime.now(dt.timezone.utc).date()
    midnight = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    return int(midnight.timestamp())


def parse_start_time(value: str | int | None) -> int:
    """`--start-time`: unix seconds or an ISO-8601 date/time (UTC when no zone); None -> `default_start_time()`."""
    if value is None or value == "":
        return default_start_time()
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return int(parsed.timestamp())


class SimClock:
    """Maps scenario time (float seconds since the start) to `created` unix seconds."""

    def __init__(self, start: int, mode: str = "fixed") -> None:
        if mode not in ("fixed", "realtime"):
            raise ValueError(f"clock mode must be fixed or realtime, not {mode!r}")
        self.start = start
        self.mode = mode
        self._last = start

    def created(self, scenario_time: float) -> int:
        """The `created` of something happening at `scenario_time`; never earlier than the previous answer."""
        if self.mode == "fixed":
            value = self.start + int(scenario_time)
        else:
            value = int(time.time())
        self._last = max(self._last, value)
        return self._last
