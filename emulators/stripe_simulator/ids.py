"""Deterministic Stripe-looking ids (`ch_3Q…`): random-looking, never time-ordered, same for a seed."""

from __future__ import annotations

import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class IdFactory:
    """Makes ids `<prefix>_<24 base62 chars>` from its own `random.Random`, so ids never disturb the scenario's draws."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")

    def new(self, prefix: str) -> str:
        """A fresh id with `prefix` (`cus`, `pi`, `ch`, `re`, `dp`, `in`, `po`, `txn`, `evt`, `req` …)."""
        n = self._rng.getrandbits(143)
        chars = []
        for _ in range(24):
            n, r = divmod(n, 62)
            chars.append(_ALPHABET[r])
        return f"{prefix}_{''.join(chars)}"
