"""Makes this folder's helper modules importable under importlib mode, and the fixtures the broker tests share."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def stream() -> list[Any]:
    """A realistic Stripe stream built from Stripe's own example objects (customers, charges, payouts)."""
    from streams_app_gen import generate

    return generate(seed=7, customers=30, charges=150, payouts=5)


@pytest.fixture(scope="module")
def expected(stream: list[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Final state of delivering the stream once, in order (the processor with in-memory tables)."""
    from streams_app_gen import expected_state

    return expected_state(stream, payouts=5)


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    """Stream worker subprocesses started by a test; all stopped at its end."""
    started: list[Any] = []
    yield started
    for w in started:
        w.stop()
