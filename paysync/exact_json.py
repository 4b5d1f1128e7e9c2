"""JSON written with its numbers exact: what a `json.loads(text, parse_float=Decimal)` parse read, written back.

orjson writes fast but refuses Decimals and integers beyond 64 bits; here a Decimal is written as the number it
holds (`str(Decimal("0.10"))` is `0.10`, never through a float) and such an integer as its digits.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def _exact_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _big_ints(value: Any) -> Any:
    """`value` with integers beyond 64 bits as exact JSON fragments."""
    if isinstance(value, dict):
        return {k: _big_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**64:
        return orjson.Fragment(str(value))
    return value


def dumps(value: Any) -> str:
    """`value` as compact JSON, numbers exact. TypeError when it holds what JSON cannot write (or a string with a
    lone surrogate); RecursionError or TypeError when it is nested deeper than orjson's limit of 254."""
    try:
        return orjson.dumps(value, default=_exact_number).decode("utf-8")
    except TypeError:  # an integer beyond 64 bits, or what orjson cannot write at all
        return orjson.dumps(_big_ints(value), default=_exact_number).decode("utf-8")
