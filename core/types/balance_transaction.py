"""balance transaction (a `paysync.StripeBalanceTransaction` record) -> Stripe_Balance_Transaction__c,
plus a PARTIAL upsert of the record it settles — the only writer of those fields:

- charge (`ch_`/`py_`, type charge/payment): Stripe_Payment__c Fee__c, Net__c, Balance_Transaction_Id__c,
  Settlement_Currency__c, Exchange_Rate__c, Paid_At__c (the capture time: the transaction's `created`), Payout__r;
- refund (`re_`/`pyr_`, type refund/payment_refund): Stripe_Refund__c Fee__c, Net__c, Balance_Transaction_Id__c, Payout__r;
- dispute withdrawal (`dp_`/`du_`, reporting category `dispute`, or a negative amount without one):
  Stripe_Dispute__c Dispute_Fee__c, Balance_Transaction_Id__c, Payout__r;
- dispute reinstatement (reporting category `dispute_reversal`, a won dispute): Stripe_Dispute__c
  Dispute_Fee_Returned__c (−fee: the fee given back) and Amount_Reinstated__c.

Other reversals and failures (refund_failure, …) write only their own record, so two
transactions of one source never fight over the same field. Fee and net are in the settlement currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.common import (
    FieldValue, MappingError, datetime_str, decimal_str, identity_fields, money, parent, payout_parent,
    require_amount, require_currency, require_id, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from core.version import encode_version

CHARGE_PREFIXES = ("ch_", "py_")
REFUND_PREFIXES = ("re_", "pyr_")
DISPUTE_PREFIXES = ("dp_", "du_")
CHARGE_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund"})


def rank(bt: Mapping[str, Any]) -> tuple[int, ...]:
    """Available after pending, then paid out after not (what a later listing adds)."""
    return (1 if bt.get("status") == "available" else 0, 1 if bt.get("payout_id") else 0)


def _is_dispute_withdrawal(bt: dict[str, Any]) -> bool:
    category = bt.get("reporting_category")
    if category:
        return bool(category == "dispute")
    return int(bt["amount"]) < 0


def _is_dispute_reinstatement(bt: dict[str, Any]) -> bool:
    """The dispute's second transaction on a win: reporting category `dispute_reversal`, funds and fee given back.

    Real payload (dj-stripe `dispute_dp_funds_reinstated_full.json`): amount 1000, fee -1500, net 2500.
    """
    return bt.get("reporting_category") == "dispute_reversal"


def _source_partial(bt: dict[str, Any], source: str, identity: dict[str, FieldValue],
                    fields: dict[str, FieldValue], version: str,
                    payout_id: str | None) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
    """(parent reference to the source record, the partial upsert of its fee fields or None) for a source id.

    `fields` are the transaction's own (its fee, net, currency and rate are copied onto the source).
    """
    bt_type, txn_id = bt["type"], bt["id"]
    source_parents = payout_parent(payout_id)
    if source.startswith(CHARGE_PREFIXES):
        ref = parent("Payment__r", "Stripe_Payment__c", "Stripe_Charge_Id__c", source)
        if bt_type not in CHARGE_TYPES:
            return ref, None
        partial = {**identity, "Fee__c": fields["Fee__c"], "Net__c": fields["Net__c"],
                   "Balance_Transaction_Id__c": txn_id, "Settlement_Currency__c": fields["Currency__c"],
                   "Exchange_Rate__c": fields["Exchange_Rate__c"],
                   # the charge's balance transaction is made when its funds are captured (an uncaptured charge
                   # has none): its `created` is the capture time, from the snapshot alone (replay-safe)
                   "Paid_At__c": fields["Created_At__c"]}
        return ref, upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", source, partial, version, None, source_parents)
    if source.startswith(REFUND_PREFIXES):
        ref = parent("Refund__r", "Stripe_Refund__c", "Stripe_Refund_Id__c", source)
        if bt_type not in REFUND_TYPES:
            return ref, None
        partial = {**identity, "Fee__c": fields["Fee__c"], "Net__c": fields["Net__c"],
                   "Balance_Transaction_Id__c": txn_id}
        return ref, upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", source, partial, version, None, source_parents)
    if source.startswith(DISPUTE_PREFIXES):
        ref = parent("Dispute__r", "Stripe_Dispute__c", "Stripe_Dispute_Id__c", source)
        if _is_dispute_reinstatement(bt):
            returned = {**identity, "Dispute_Fee_Returned__c": money(-int(bt["fee"]), bt["currency"]),
                        "Amount_Reinstated__c": money(int(bt["amount"]), bt["currency"])}
            return ref, upsert("Stripe_Dispute__c", "Stripe_Dispute_Id__c", source, returned, version, None)
        if not _is_dispute_withdrawal(bt):
            return ref, None
        partial = {**identity, "Dispute_Fee__c": fields["Fee__c"], "Balance_Transaction_Id__c": txn_id}
        return ref, upsert("Stripe_Dispute__c", "Stripe_Dispute_Id__c", source, partial, version, None, source_parents)
    return None, None


def _checked(bt: Any) -> tuple[str, str, int, int, int, int, str]:
    """(id, currency, amount, fee, net, created, type) of a well-formed record; MappingError otherwise."""
    if not isinstance(bt, dict):
        raise MappingError("BAD_OBJECT", "balance transaction is not a record")
    txn_id = require_id(bt)
    currency = require_currency(bt)
    amount, fee, net = (require_amount(bt, key) for key in ("amount", "fee", "net"))
    created = bt.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise MappingError("BAD_TIMESTAMP", f"created must be integer unix seconds, got {created!r}")
    bt_type = bt.get("type")
    if not isinstance(bt_type, str) or not bt_type:
        raise MappingError("MISSING_FIELD", "type is missing")
    return txn_id, currency, amount, fee, net, created, bt_type


def _id_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def map_balance_transaction(bt: dict[str, Any], cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Balance_Transaction__c upsert, then at most one partial upsert of its source record."""
    txn_id, currency, amount, fee, net, created, bt_type = _checked(bt)
    source, payout_id = _id_or_none(bt.get("source_id")), _id_or_none(bt.get("payout_id"))
    rate = decimal_str(bt.get("exchange_rate"))
    version = encode_version((created, rank(bt), txn_id))
    identity = identity_fields(bt.get("account"), bool(bt.get("livemode")), cfg)
    fields: dict[str, FieldValue] = dict(identity)
    if cfg.multi_currency:
        fields["CurrencyIsoCode"] = upper(currency)
    fields.update({
        "Type__c": text(bt_type, 50),
        "Reporting_Category__c": text(bt.get("reporting_category"), 50),
        "Amount__c": money(amount, currency),
        "Fee__c": money(fee, currency),
        "Net__c": money(net, currency),
        "Currency__c": upper(currency),
        "Exchange_Rate__c": rate,
        "Available_On__c": datetime_str(bt.get("available_on")),
        "Status__c": text(bt.get("status"), 20),
        "Source_Id__c": source,
        "Created_At__c": datetime_str(created),
    })
    own_payout = source if bt_type == "payout" and source and source.startswith("po_") else None
    parents = payout_parent(payout_id or own_payout)
    ref, partial = (None, None)
    if source:
        ref, partial = _source_partial(bt, source, identity, fields, version, payout_id)
    if ref is not None:
        parents.append(ref)
    record = upsert(
        "Stripe_Balance_Transaction__c", "Stripe_Balance_Transaction_Id__c", txn_id, fields, version, None, parents
    )
    return [record] if partial is None else [record, partial]


# Carried by its own topic (`stripe.balance_transactions`, keyed by `paysync.keys.balance_transaction_key`),
# mapped by `map_balance_transaction`: no `mapper` for `stripe.events`.
SPEC = StripeType(
    name="balance_transaction", list_path="/v1/balance_transactions", rank=rank,
    sobjects=("Stripe_Balance_Transaction__c",), external_id_field="Stripe_Balance_Transaction_Id__c",
    write_rank=70,
)
