"""Card numbers (PANs) must never leave Stripe through paysync: one detector for logs and mappings.

A card number is a run of 13–19 digits (spaces or dashes allowed between them) that passes the Luhn
check. A run standing alone is examined in every 13–19-digit window, so a card number followed by
another digit group is still caught; digits that are part of a word or an id (`cus_4242…`,
`ch_0000…`) are not card numbers.
"""

from __future__ import annotations

import re

REDACTED = "[REDACTED-PAN]"
_RUN = re.compile(r"(?<![0-9A-Za-z_])(?:\d[ -]?){12,}\d(?![0-9A-Za-z_])")
# the same, except a run that is a part of a decimal number (`46.963719129562378`, `1796186770435.25`)
_RUN_NOT_DECIMAL = re.compile(r"(?<![0-9A-Za-z_])(?<!\d\.)(?:\d[ -]?){12,}\d(?![0-9A-Za-z_])(?!\.\d)")


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def holds_card_number(run: str) -> bool:
    """Whether a digit run (separators allowed) contains a Luhn-valid 13–19-digit window."""
    digits = re.sub(r"[ -]", "", run)
    return any(luhn_ok(digits[i:i + n]) for n in range(13, 20) for i in range(len(digits) - n + 1))


def redact_card_numbers(text: str, *, decimals_are_numbers: bool = False) -> str:
    """`text` with every standalone digit run that holds a card number replaced by `[REDACTED-PAN]`.

    `decimals_are_numbers`: digits on either side of a decimal point are a number, not a card (logs, whose timings
    and offsets are floats; a fraction of 13+ digits passes Luhn about half the time). Payload text keeps the
    stricter default.
    """
    pattern = _RUN_NOT_DECIMAL if decimals_are_numbers else _RUN
    return pattern.sub(lambda m: REDACTED if holds_card_number(m.group(0)) else m.group(0), text)
