"""Exact money: Stripe's integer minor units <-> decimals in the currency's own exponent.

Never floats. Zero-decimal currencies have no minor unit (JPY 1000 is ¥1000); three-decimal ones
have three (BHD 1234 is 1.234). Everything else has two.
"""

from __future__ import annotations

from decimal import Decimal

ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())


class MoneyError(ValueError):
    """An amount or currency that cannot be converted exactly."""


def exponent(currency: str) -> int:
    """Digits after the decimal point for `currency` (ISO 4217, any case)."""
    code = currency.lower()
    if len(code) != 3 or not code.isalpha():
        raise MoneyError(f"not an ISO 4217 currency code: {currency!r}")
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_decimal(minor: int, currency: str) -> Decimal:
    """Minor units -> an exact Decimal with exactly the currency's exponent (e.g. 1050 usd -> 10.50)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise MoneyError(f"amount must be an integer number of minor units, got {type(minor).__name__}")
    exp = exponent(currency)
    return Decimal(minor).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def to_decimal_str(minor: int, currency: str) -> str:
    """Minor units -> the decimal string Salesforce receives (`"10.50"`, `"1000"`, `"1.234"`)."""
    return format(to_decimal(minor, currency), "f")


def to_minor(amount: Decimal | str, currency: str) -> int:
    """A decimal amount -> integer minor units; MoneyError if it has more digits than the currency allows."""
    value = Decimal(str(amount))
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more decimals than {currency.upper()} allows")
    return int(scaled)
