"""The vocabulary every external-error table uses: what to do with a failure.

Each external system (Stripe, Salesforce, Kafka) has one table, next to its client, mapping its
errors to one of these outcomes; code that handles errors asks the table, never improvises.
"""

from __future__ import annotations

from enum import Enum


class Outcome(str, Enum):
    """What to do after an external call failed."""

    RETRY = "retry"  # transient: try again with backoff and jitter
    REAUTH = "reauth"  # the session expired: log in again, then retry
    PAUSE = "pause"  # a budget ran out: stop consuming until it returns, then retry
    DEAD_LETTER = "dead_letter"  # this record can never succeed as it is: dead-letter it, go on
    SKIP = "skip"  # nothing to do (e.g. an event type paysync does not sync): count it, go on


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 30.0, rand: float | None = None) -> float:
    """Full-jitter exponential backoff: a delay in [0, min(cap, base * 2**attempt)]."""
    import random

    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return float(ceiling * (random.random() if rand is None else rand))
