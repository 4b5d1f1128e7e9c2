"""The order guard: a deterministic version for every Stripe object snapshot.

Stripe delivers out of order and `created` has one-second resolution, so a version is
`(created, lifecycle rank, event id)` compared lexicographically: the later event wins; in the same
second the state later in the object's own lifecycle wins (a paid invoice never returns to open,
`amount_refunded` never decreases, a closed dispute stays closed); the event id settles the rest so
that replays always give the same answer. Each rank component is monotone over the object's life,
so the lexicographic order extends the lifecycle's partial order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams import statuses

Version = tuple[int, tuple[int, ...], str]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _flag(value: Any) -> int:
    return 1 if value is True else 0


def _status_rank(table: Mapping[str, int], obj: Mapping[str, Any]) -> int:
    return table.get(str(obj.get("status")), statuses.UNKNOWN_RANK)


def lifecycle_rank(object_type: str, obj: dict[str, Any]) -> tuple[int, ...]:
    """How far along its lifecycle `obj` is; higher is later. Never raises (unknown -> low ranks)."""
    if object_type == "charge":
        return (
            _status_rank(statuses.CHARGE_RANK, obj),
            _flag(obj.get("captured")),
            _int(obj.get("amount_captured")),
            _int(obj.get("amount_refunded")),
            _flag(obj.get("refunded")),
            _flag(obj.get("disputed")),
        )
    if object_type == "payment_intent":
        # A payment intent that has made a charge attempt is later than one that has not, even when
        # both read requires_payment_method (created, then payment_failed in the same second).
        attempted = 1 if obj.get("latest_charge") or (obj.get("charges") or {}).get("data") else 0
        return (attempted, _status_rank(statuses.PAYMENT_INTENT_RANK, obj), _int(obj.get("amount_received")))
    if object_type == "refund":
        return (_status_rank(statuses.REFUND_RANK, obj),)
    if object_type == "dispute":
        details = obj.get("evidence_details")
        details = details if isinstance(details, dict) else {}
        return (
            _status_rank(statuses.DISPUTE_RANK, obj),
            _int(details.get("submission_count")),
            _flag(details.get("has_evidence")),
        )
    if object_type == "invoice":
        return (
            _status_rank(statuses.INVOICE_RANK, obj),
            _int(obj.get("amount_paid")),
            _int(obj.get("attempt_count")),
        )
    if object_type == "payout":
        return (_status_rank(statuses.PAYOUT_RANK, obj),)
    if object_type == "customer":
        return (_flag(obj.get("deleted")),)
    if object_type == "balance_transaction":
        return (1 if obj.get("status") == "available" else 0, 1 if obj.get("payout_id") else 0)
    return ()


def version_of(object_type: str, obj: dict[str, Any], created: int, event_id: str | None) -> Version:
    """The version of this snapshot of `obj` as seen in an event created at `created` (unix seconds)."""
    return (int(created), lifecycle_rank(object_type, obj), event_id or "")


def is_newer(candidate: Version, applied: Version | None) -> bool:
    """True when `candidate` is strictly newer than the version already applied (None: nothing yet)."""
    return applied is None or candidate > applied


def encode_version(v: Version) -> str:
    """`created:rank.rank…:event id`, e.g. `1700000000:3.1500.0:evt_1`; `decode_version` inverts it."""
    created, rank, event_id = v
    return f"{int(created)}:{'.'.join(str(int(r)) for r in rank)}:{event_id}"


def decode_version(s: str) -> Version:
    """Parse `encode_version`'s output; ValueError when it is not one."""
    parts = s.split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"not an encoded version: {s!r}")
    created, rank, event_id = parts
    return (int(created), tuple(int(r) for r in rank.split(".")) if rank else (), event_id)
