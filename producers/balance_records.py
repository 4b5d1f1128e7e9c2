"""Stripe balance transaction JSON -> `paysync.StripeBalanceTransaction` record and key (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from paysync.keys import balance_transaction_key, ref_id
from paysync.redact import redact_json_text, redact_parsed

Source = Literal["webhook", "poll", "backfill"]


def balance_record(txn: dict[str, Any], raw: str, *, source: Source, account: str | None, api_version: str,
                   received_at_ms: int, payout_id: str | None = None,
                   payout_transaction_count: int | None = None, exact: bool = False) -> tuple[str, dict[str, Any]]:
    """(Kafka key, record). `txn` should be parsed with `parse_float=Decimal` so exchange_rate stays exact.

    `exact`: `raw` is `compact_json(txn)` (a listed page's object) or `txn` is `raw` parsed with
    `parse_float=Decimal`, so `txn` is redacted as it is instead of `raw` being parsed again.
    """
    rate = txn.get("exchange_rate")
    return balance_transaction_key(txn), {
        "id": txn["id"],
        "source_id": ref_id(txn.get("source")),
        "payout_id": payout_id,
        "payout_transaction_count": payout_transaction_count,
        "account": account,
        "livemode": bool(txn.get("livemode", False)),
        "type": txn["type"],
        "reporting_category": txn.get("reporting_category"),
        "amount": int(txn["amount"]),
        "fee": int(txn.get("fee") or 0),
        "net": int(txn["net"]),
        "currency": str(txn["currency"]).lower(),
        "exchange_rate": None if rate is None else format(Decimal(str(rate)), "f"),
        "available_on": int(txn.get("available_on") or 0),
        "created": int(txn["created"]),
        "status": str(txn.get("status") or "pending"),
        "source": source,
        "api_version": api_version,
        "received_at": received_at_ms,
        # an expanded `source` is a whole charge, card details and all (issue 18)
        "raw": redact_parsed(txn, raw) if exact else redact_json_text(raw),
    }
