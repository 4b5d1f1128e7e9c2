"""Late visibility on purpose (issue 15 point 5): a listed event or balance transaction shows up in lists a
random 0-`max_delay_s` seconds after its `created` (tap-stripe#45: entries appear in lists after their
`created` second). The delay of an entry is a pure function of its id and the seed, so a run is repeatable;
`max_delay_s = 0` is off. Retrieves are not delayed (only lists, as the issue describes)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable


class Visibility:
    """`visible(body)`: whether a listed JSON body is visible at `clock()`."""

    def __init__(self, max_delay_s: float = 0.0, seed: int = 0, clock: Callable[[], float] | None = None) -> None:
        import time

        self.max_delay_s, self.seed = max_delay_s, seed
        self.clock = clock or time.time

    def delay_of(self, object_id: str) -> float:
        """The entry's delay in seconds, uniform in [0, max_delay_s]."""
        digest = hashlib.blake2b(f"{self.seed}:{object_id}".encode(), digest_size=8).digest()
        return self.max_delay_s * int.from_bytes(digest, "big") / 2**64

    def visible(self, body: str) -> bool:
        if self.max_delay_s <= 0:
            return True
        obj = json.loads(body)
        return float(obj.get("created") or 0) + self.delay_of(str(obj.get("id"))) <= self.clock()

    def filter(self, bodies: list[str]) -> list[str]:
        """The visible bodies of a page, in order."""
        return bodies if self.max_delay_s <= 0 else [b for b in bodies if self.visible(b)]
