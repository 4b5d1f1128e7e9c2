"""Field-by-field comparison of what Salesforce should hold with what it holds.

Pure: expected records (what the pipeline's own mappings make of Stripe's final state) and actual
records (SOQL rows) go in; a list of drifts comes out. Values are compared by meaning, not text:
decimals as Decimals (`"10.50"` equals `10.5`), datetimes as instants, booleans as booleans.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

# Fields that record *which event* last wrote a record, not Stripe state: never drift.
IGNORED_FIELDS = frozenset({"Last_Stripe_Event_Id__c", "Last_Stripe_Event_At__c"})
# Fields whose difference means "Salesforce shows an older state of the object".
STATE_FIELDS = frozenset({"Status__c", "Stripe_Status__c", "Amount_Refunded__c", "Amount_Paid__c",
                          "Amount_Remaining__c", "Attempt_Count__c", "Reconciliation_Status__c",
                          "Stripe_Payment_Status__c"})

Key = tuple[str, str]  # (sobject, external id)


@dataclass(frozen=True)
class Drift:
    """One difference. kind: missing | extra | stale | mismatch."""

    kind: str
    sobject: str
    external_id: str
    field: str | None = None
    expected: Any = None
    actual: Any = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("expected", "actual"):
            if isinstance(out[key], Decimal):
                out[key] = format(out[key], "f")
        return out


def _as_instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) < 19 or value[10] != "T":
        return None
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]  # +0000 -> +00:00
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def normalize(value: Any) -> Any:
    """A comparable form: Decimal for numbers and numeric strings, datetime for instants, else as is."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        instant = _as_instant(value)
        if instant is not None:
            return instant
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return date.fromisoformat(value)
            except ValueError:
                return value
        try:
            number = Decimal(value)
        except InvalidOperation:
            return value
        return number if number.is_finite() else value
    return value


def same(expected: Any, actual: Any) -> bool:
    """Whether two field values mean the same thing."""
    return bool(normalize(expected) == normalize(actual))


def compare(expected: dict[Key, dict[str, Any]], actual: dict[Key, dict[str, Any]],
            sobjects: set[str] | None = None) -> list[Drift]:
    """Drifts between expected and actual records (both keyed by (sobject, external id)).

    `actual` rows map field API names to values; relationship fields may be given as
    `Payout__r.Stripe_Payout_Id__c` keys in both. Only objects in `sobjects` (default: all seen) count
    as "extra" when Salesforce has a record Stripe does not.
    """
    drifts: list[Drift] = []
    scope = sobjects if sobjects is not None else {k[0] for k in expected} | {k[0] for k in actual}
    for key in sorted(expected):
        sobject, ext_id = key
        row = actual.get(key)
        if row is None:
            drifts.append(Drift("missing", sobject, ext_id))
            continue
        for field_name, want in sorted(expected[key].items()):
            if field_name in IGNORED_FIELDS:
                continue
            have = row.get(field_name)
            if not same(want, have):
                kind = "stale" if field_name in STATE_FIELDS else "mismatch"
                drifts.append(Drift(kind, sobject, ext_id, field_name, normalize(want), normalize(have)))
    for key in sorted(actual):
        if key not in expected and key[0] in scope:
            drifts.append(Drift("extra", key[0], key[1]))
    return drifts
