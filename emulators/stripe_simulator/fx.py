"""Currency conversion and fees, exact: Decimal arithmetic, half-even rounding to the settlement minor unit.

Rates are kept as Decimals (six decimal places, like Stripe's `exchange_rate`); the JSON number sent in a
balance transaction is derived from that Decimal, never computed in floating point.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from paysync.money import exponent, to_decimal, to_minor

# Value of one unit of each currency in USD (a fixed, made-up but plausible table).
_USD_VALUE: dict[str, Decimal] = {
    "usd": Decimal("1"),
    "eur": Decimal("1.0834"),
    "gbp": Decimal("1.2715"),
    "jpy": Decimal("0.006710"),
    "kwd": Decimal("3.2541"),
}
CHARGE_CURRENCIES: tuple[str, ...] = tuple(_USD_VALUE)
_RATE_PLACES = Decimal("0.000001")
_PERCENT_FEE = Decimal("0.029")
_FIXED_FEE_MINOR = {"usd": 30, "eur": 25, "gbp": 20}
DISPUTE_FEE_MINOR = {"usd": 1500, "eur": 1500, "gbp": 1500}


def exchange_rate(charge_currency: str, settlement_currency: str) -> Decimal | None:
    """Settlement units per charge unit, six places; None when the currencies are the same."""
    if charge_currency == settlement_currency:
        return None
    rate = _USD_VALUE[charge_currency] / _USD_VALUE[settlement_currency]
    return rate.quantize(_RATE_PLACES, rounding=ROUND_HALF_EVEN)


def convert(amount: int, charge_currency: str, settlement_currency: str, rate: Decimal | None) -> int:
    """`amount` minor units of `charge_currency` in settlement minor units (half-even)."""
    if rate is None:
        return amount
    value = to_decimal(amount, charge_currency) * rate
    quantum = Decimal(1).scaleb(-exponent(settlement_currency))
    return to_minor(value.quantize(quantum, rounding=ROUND_HALF_EVEN), settlement_currency)


def processing_fee(settled_amount: int, settlement_currency: str) -> int:
    """2.9 % + a fixed fee (30¢ / 25 c€ / 20p), in settlement minor units, half-even."""
    value = to_decimal(settled_amount, settlement_currency) * _PERCENT_FEE
    quantum = Decimal(1).scaleb(-exponent(settlement_currency))
    fee = to_minor(value.quantize(quantum, rounding=ROUND_HALF_EVEN), settlement_currency)
    return fee + _FIXED_FEE_MINOR[settlement_currency]


def rate_as_json_number(rate: Decimal | None) -> float | None:
    """The JSON number Stripe sends for `exchange_rate` (shortest repr of the Decimal's value)."""
    return None if rate is None else float(rate)
