"""Payout reconciliation: do the nets of a payout's balance transactions add up to its amount?

Writes only the reconciliation fields of Stripe_Payout__c (Gross__c, Fees__c, Net__c, Discrepancy__c,
Transaction_Count__c, Reconciliation_Status__c); the payout object's own mapping owns the rest.
Integer arithmetic on minor units only; the decimal strings are made at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core import statuses
from core.common import EventMeta, FieldValue, MappingError, identity_fields, money, require_currency, upsert
from core.config import MappingConfig


@dataclass(frozen=True)
class PayoutMember:
    """One balance transaction paid out by the payout (its own `type=payout` transaction excluded)."""

    balance_transaction_id: str
    amount: int
    fee: int
    net: int
    currency: str


def _common_currency(payout_currency: str | None, members: Iterable[PayoutMember]) -> str | None:
    """The payout's currency (else its members'); MappingError when a member's amounts or currency do not fit."""
    currency = require_currency({"currency": payout_currency}) if payout_currency else None
    for member in members:
        member_currency = require_currency({"currency": member.currency})
        for name in ("amount", "fee", "net"):
            value = getattr(member, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise MappingError("BAD_AMOUNT", f"{member.balance_transaction_id}.{name} is not an integer")
        if currency is None:
            currency = member_currency
        elif member_currency != currency:
            raise MappingError(
                "CURRENCY_MISMATCH", f"{member.balance_transaction_id} is {member_currency}, payout is {currency}"
            )
    return currency


def _status(payout_amount: int | None, net: int, count: int, expected_count: int | None, automatic: bool | None,
            reconciliation_status: str | None) -> tuple[str, int | None]:
    """(reconciliation status, discrepancy in minor units or None): the rule of `reconcile_payout`."""
    # A manual payout (`automatic=false`) has no member list. `not_applicable` alone means manual only where
    # `automatic` is unknown: an automatic payout that failed is `not_applicable` too, and its members are listed.
    if automatic is False or (automatic is None and reconciliation_status == "not_applicable"):
        return statuses.RECONCILIATION_NOT_APPLICABLE_MANUAL, None
    if reconciliation_status == "in_progress":
        return statuses.RECONCILIATION_PENDING, None
    if payout_amount is None or (expected_count is not None and count < expected_count):
        return statuses.RECONCILIATION_PENDING, None
    if net == payout_amount:
        return statuses.RECONCILED, 0
    if expected_count is None:
        return statuses.RECONCILIATION_PENDING, None
    return statuses.RECONCILIATION_DISCREPANCY, payout_amount - net


def reconcile_payout(
    payout_id: str,
    payout_amount: int | None,
    payout_currency: str | None,
    members: Sequence[PayoutMember],
    expected_count: int | None,
    meta: EventMeta,
    cfg: MappingConfig,
    automatic: bool | None = None,
    reconciliation_status: str | None = None,
) -> dict[str, Any]:
    """A partial Stripe_Payout__c upsert with the sums and the reconciliation status.

    `automatic` and `reconciliation_status` are the payout's own fields (None: unknown, e.g. an API version
    without them). A manual payout (`automatic=false`, or `reconciliation_status=not_applicable`) is "Not
    Applicable (manual payout)": Stripe does not know its members. While `reconciliation_status` is
    `in_progress` the member list is not final: Pending, never a Discrepancy (Reconciled only once it is
    `completed` or unknown).

    Members are de-duplicated by balance transaction id (the last one wins). Status: Pending while
    fewer members than `expected_count` are in, or the payout amount is unknown, or (count unknown)
    the nets do not add up yet; Reconciled when sum(net) == payout_amount exactly; else Discrepancy
    with Discrepancy__c = payout_amount - sum(net). MappingError(CURRENCY_MISMATCH) when a member's
    currency differs from the payout's.
    """
    if not payout_id:
        raise MappingError("MISSING_FIELD", "payout id is missing")
    unique = {m.balance_transaction_id: m for m in members}
    currency = _common_currency(payout_currency, unique.values())
    if payout_amount is not None and (isinstance(payout_amount, bool) or not isinstance(payout_amount, int)):
        raise MappingError("BAD_AMOUNT", f"payout amount is not an integer: {payout_amount!r}")
    gross = sum(m.amount for m in unique.values())
    fees = sum(m.fee for m in unique.values())
    net = sum(m.net for m in unique.values())
    count = len(unique)

    status, discrepancy = _status(payout_amount, net, count, expected_count, automatic, reconciliation_status)
    fields: dict[str, FieldValue] = identity_fields(meta.account, meta.livemode, cfg)
    fields.update({
        "Gross__c": money(gross, currency) if currency else None,
        "Fees__c": money(fees, currency) if currency else None,
        "Net__c": money(net, currency) if currency else None,
        "Discrepancy__c": money(discrepancy, currency) if currency else None,
        "Transaction_Count__c": count,
        "Reconciliation_Status__c": status,
    })
    return upsert("Stripe_Payout__c", "Stripe_Payout_Id__c", payout_id, fields, meta.version, meta.event_id)
