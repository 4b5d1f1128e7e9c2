"""Field values: coerce what a client sent (JSON or CSV text) into the stored form, with Salesforce's errors.

Stored forms: text kinds → `str`; Number → `Decimal` rounded half-up to the field's scale (never a float);
Checkbox → `bool`; Date → `YYYY-MM-DD`; DateTime → `YYYY-MM-DDTHH:MM:SS.sss+0000` (UTC, Salesforce's rendering).
`render_json` / `render_csv` turn a stored value back into wire form (numbers exact, no trailing zeros).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from emulators.salesforce_emulator.metadata import FieldDef

TEXT_TYPES = {"Text", "Phone", "Email", "Url", "LongTextArea", "TextArea", "Picklist"}
_DT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class FieldError(Exception):
    """A value Salesforce would reject: `code` (statusCode), `message`, `fields`."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or []


def _type_error(f: FieldDef, value: Any) -> FieldError:
    return FieldError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.label}: value not of required type: {value}", [f.name])


def parse_datetime(text: str) -> datetime | None:
    """`2026-01-02T03:04:05.000Z`, `…+0000`, `…+01:00` or a date → an aware UTC datetime; None if unparsable."""
    m = _DT.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro, tzinfo=timezone.utc)
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        dt -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return dt


def format_datetime(dt: datetime) -> str:
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def now_datetime() -> str:
    return format_datetime(datetime.now(timezone.utc))


def _number(f: FieldDef, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _type_error(f, value)
    if isinstance(value, float):
        value = repr(value)
    try:
        dec = Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        dec = None
    if dec is None or not dec.is_finite():
        raise _type_error(f, value)
    quantum = Decimal(1).scaleb(-f.scale)
    dec = dec.quantize(quantum, rounding=ROUND_HALF_UP)
    int_digits = len(str(abs(dec).to_integral_value(rounding="ROUND_DOWN")).lstrip("0"))
    if int_digits > max(f.precision - f.scale, 0):
        raise FieldError("NUMBER_OUTSIDE_VALID_RANGE", f"{f.label}: value outside of valid range on numeric field: "
                         f"{value}", [f.name])
    return dec


def _text(f: FieldDef, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, Decimal, str)):
        text = str(value)
    else:
        raise FieldError("JSON_PARSER_ERROR", f"Cannot deserialize instance of string from {type(value).__name__} "
                         f"value for field {f.name}", [f.name])
    if f.length and len(text) > f.length:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise FieldError("STRING_TOO_LONG", f"{f.label}: data value too large: {shown} (max length={f.length})",
                         [f.name])
    if f.type == "Picklist" and f.restricted and text not in f.picklist:
        raise FieldError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                         f"{f.label}: bad value for restricted picklist field: {text}", [f.name])
    return text


def coerce(f: FieldDef, value: Any) -> Any:
    """`value` (JSON value or CSV text; None = null) as stored for field `f`; raises `FieldError`."""
    if value is None:
        return None
    if f.type == "Number":
        return _number(f, value)
    if f.type == "Checkbox":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise _type_error(f, value)
    if f.type == "DateTime":
        dt = parse_datetime(value) if isinstance(value, str) else None
        if dt is None:
            raise _type_error(f, value)
        return format_datetime(dt)
    if f.type == "Date":
        if isinstance(value, str):
            m = _DATE.match(value.strip())
            try:
                return date(int(m[1]), int(m[2]), int(m[3])).isoformat() if m else _date_from_dt(f, value)
            except ValueError:
                raise _type_error(f, value) from None
        raise _type_error(f, value)
    if f.type in ("Lookup", "Id"):
        if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum():
            raise FieldError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
        return value
    return _text(f, value)


def _date_from_dt(f: FieldDef, value: str) -> str:
    dt = parse_datetime(value)
    if dt is None:
        raise _type_error(f, value)
    return dt.date().isoformat()


def render_number(dec: Decimal) -> str:
    """Exact plain rendering without exponent or trailing zeros: 10.500 → `10.5`, 1000 → `1000`."""
    text = format(dec, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def render_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return render_number(value)
    return str(value)


def to_json_value(value: Any) -> Any:
    """Stored → JSON-ready; Decimals stay Decimal (the JSON encoder renders them exactly)."""
    return value


def from_storage(f: FieldDef, raw: Any) -> Any:
    """A value read back from SQLite's JSON (numbers kept as strings there) into the stored form."""
    if raw is None:
        return None
    if f.type == "Number":
        return Decimal(raw)
    return raw


def to_storage(value: Any) -> Any:
    return render_number(value) if isinstance(value, Decimal) else value
