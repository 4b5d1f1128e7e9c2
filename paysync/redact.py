"""Raw Stripe payloads reduced to what paysync needs, before anything reaches Kafka (pure functions).

`stripe.events` keeps raw events 35 days and `paysync.dlq` keeps dead letters for ever, so the raw JSON every
producer stores is first reduced (docs/operations.md, "What is stored"):

- Payment instruments — objects whose `object` is `card`, `bank_account`, `issuing.card`, `source` or
  `payment_method`, and every entry of a `payment_method_details` — keep only `id`, `object`, `type`,
  `customer`, `brand` and `last4` (the mappings read `brand` and `last4`: `core.types.charge._card`, from
  `payment_method_details.card` or an old-API `source` of object `card`). Expiry, fingerprint, IIN, network
  tokens, 3-D Secure, wallets (`dynamic_last4`), checks, owners and billing details are dropped.
- Anywhere in the tree, keys that only hold card or bank identifiers are dropped (`DROPPED_KEYS`: expiry,
  fingerprint, account/routing numbers, IBAN, …) — bank-transfer instructions carry an IBAN or account number
  outside any instrument object.
- Every string (and key) has card numbers (`paysync.pan`), IBANs (ISO 13616 mod-97 valid) and Stripe secrets
  (`sk_`/`rk_` keys, `whsec_` signing secrets) replaced by a marker.

Nothing else is touched: ids, amounts, statuses, metadata keys and values (minus those three patterns) stay, so
the mappings give the same upserts. A webhook's signature is verified over the raw body BEFORE this runs.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from paysync import exact_json
from paysync.pan import redact_card_numbers

MARKER_KEY = "paysync_redacted"
RULES_VERSION = 1
REDACTED_IBAN = "[REDACTED-IBAN]"
REDACTED_SECRET = "[REDACTED-SECRET]"

INSTRUMENT_OBJECTS = frozenset({"card", "bank_account", "issuing.card", "source", "payment_method"})
KEPT_ON_INSTRUMENT = frozenset({"id", "object", "type", "customer", "brand", "last4"})
DROPPED_KEYS = frozenset({
    "exp_month", "exp_year", "fingerprint", "iin", "dynamic_last4", "network_token",
    "account_number", "routing_number", "iban", "swift_code", "sort_code", "bsb_number", "clabe",
    "transit_number", "institution_number",
})

_IBAN = re.compile(r"(?<![0-9A-Za-z_])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![0-9A-Za-z_])")
_SECRET = re.compile(r"(?<![0-9A-Za-z])(?:(?:sk|rk)_(?:live|test)_|whsec_)[0-9A-Za-z+/=_]+")
_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){12}")
_ANY = re.compile(r"\d(?:[ -]?\d){12}|[A-Z]{2}[0-9]{2}|(?:sk|rk)_|whsec_")  # one search to pass most strings


def iban_ok(candidate: str) -> bool:
    """Whether `candidate` (spaces allowed) passes the ISO 13616 mod-97 check."""
    text = candidate.replace(" ", "")
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _iban_sub(match: re.Match[str]) -> str:
    """The longest mod-97-valid prefix of a candidate run redacted (a run may go on past the IBAN: `… 0`)."""
    run = match.group(0)
    ends = [i + 1 for i, ch in enumerate(run) if ch != " "]  # run index after the n-th character, n = 1, 2, …
    for n in range(len(ends), 14, -1):
        if iban_ok(run[:ends[n - 1]]):
            return REDACTED_IBAN + run[ends[n - 1]:]
    return run


def redact_text(text: str) -> str:
    """`text` with card numbers, IBANs and Stripe secrets replaced by markers (unchanged when it has none)."""
    if not _ANY.search(text):
        return text
    if _IBAN.search(text):  # before card numbers: an IBAN's digits may pass the Luhn check too
        text = _IBAN.sub(_iban_sub, text)
    if _DIGIT_RUN.search(text):
        text = redact_card_numbers(text)
    if "_" in text:
        text = _SECRET.sub(REDACTED_SECRET, text)
    return text


_CLEAN_KEYS: set[str] = set()  # short keys redact_text leaves as they are (a cache: the functions stay pure)
_CLEAN_KEYS_MAX, _CLEAN_KEY_LEN = 4096, 64


def _key_text(key: str) -> str:
    """`redact_text(key)`; remembered only for short keys it leaves unchanged (the memo holds nothing redactable)."""
    if key in _CLEAN_KEYS:
        return key
    out = redact_text(key)
    if out == key and len(key) <= _CLEAN_KEY_LEN:
        if len(_CLEAN_KEYS) >= _CLEAN_KEYS_MAX:  # metadata keys are open-ended: start afresh rather than grow
            _CLEAN_KEYS.clear()
        _CLEAN_KEYS.add(key)
    return out


class RedactionError(ValueError):
    """A JSON value nested too deeply to walk, or whose redacted copy cannot be written: it cannot be stored (the
    caller refuses it)."""


class _Counter:
    """How many values one redaction dropped or replaced."""

    def __init__(self) -> None:
        self.changes = 0


def _instrument(obj: dict[str, Any], count: _Counter) -> dict[str, Any]:
    """A payment instrument (or one `payment_method_details` entry) cut to `KEPT_ON_INSTRUMENT`."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in KEPT_ON_INSTRUMENT and not isinstance(value, (dict, list)):
            out[key] = redact_text(value) if isinstance(value, str) else value
        elif key == obj.get("type") and isinstance(value, dict):  # a source's / payment method's `card: {…}`
            out[key] = _instrument(value, count)
        elif isinstance(value, dict) and key == "customer":  # an expanded customer is not an instrument
            out[key] = _walk(value, count)
        else:
            count.changes += 1
    return out


def _details(details: dict[str, Any], count: _Counter) -> dict[str, Any]:
    """`payment_method_details`: its `type`, and each method's entry cut like an instrument."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if isinstance(value, dict):
            out[key] = _instrument(value, count)
        elif key == "type" or value is None:
            out[key] = value
        else:
            count.changes += 1
    return out


def _walk(value: Any, count: _Counter) -> Any:
    if isinstance(value, str):
        out = redact_text(value)
        count.changes += out != value
        return out
    if isinstance(value, list):
        return [_walk(item, count) for item in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("object")
    if isinstance(kind, str) and kind in INSTRUMENT_OBJECTS:
        return _instrument(value, count)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key in DROPPED_KEYS:
            count.changes += 1
            continue
        safe_key = _key_text(key)
        count.changes += safe_key != key
        if key == "payment_method_details" and isinstance(item, dict):
            result[safe_key] = _details(item, count)
        else:
            result[safe_key] = _walk(item, count)
    return result


def redact(value: Any) -> tuple[Any, int]:
    """(redacted copy of a parsed Stripe JSON value, number of values dropped or replaced); `value` is untouched."""
    count = _Counter()
    try:
        return _walk(value, count), count.changes
    except RecursionError:
        raise RedactionError("the JSON is nested too deeply to redact") from None


def _dumps(value: Any) -> str:
    """`value` as compact JSON, numbers exact; RedactionError when it cannot be written (nested deeper than
    orjson's limit of 254, or a string holding a lone surrogate, which JSON's `\\ud800` escape allows)."""
    try:
        return exact_json.dumps(value)
    except (TypeError, RecursionError) as exc:
        raise RedactionError(f"the redacted JSON cannot be written: {exc}") from None


def _stored(redacted: Any, changes: int, text: str, mark: dict[str, Any] | None) -> str:
    """`text` when `changes` is 0, else `redacted` (marked when an object) as compact JSON."""
    if changes == 0:
        return text
    if mark is not None and isinstance(redacted, dict):
        redacted[MARKER_KEY] = {"rules": RULES_VERSION, **mark}
    return _dumps(redacted)


def redact_parsed(parsed: Any, text: str, mark: dict[str, Any] | None = None) -> str:
    """What `redact_json_text(text, mark)` returns, from `parsed` = `json.loads(text, parse_float=Decimal)`.

    `text` itself when nothing needed redacting, else compact JSON of the redacted copy (numbers exact) with
    `mark` under `MARKER_KEY` for an object. `parsed` is not changed; RedactionError as `redact_json_text`.
    """
    redacted, changes = redact(parsed)
    return _stored(redacted, changes, text, mark)


def redact_json_text(text: str, mark: dict[str, Any] | None = None) -> str:
    """`text` (a JSON document) redacted; returned unchanged when nothing in it needed redacting.

    When something was redacted the result is compact JSON (numbers exact as written) and, for an object,
    `mark` (if given) is added under `MARKER_KEY`, saying what was done and how the original was verified.
    Text that is not JSON is redacted as text; RedactionError when it is nested too deeply to walk, or when the
    redacted copy cannot be written (`_dumps`).
    A caller that has parsed `text` already (with `parse_float=Decimal`) calls `redact_parsed` instead.
    """
    try:
        parsed = json.loads(text, parse_float=Decimal)
    except RecursionError:
        raise RedactionError("the JSON is nested too deeply to redact") from None
    except ValueError:
        return redact_text(text)
    redacted, changes = redact(parsed)  # not via redact_parsed: too deep at the same nesting as before
    return _stored(redacted, changes, text, mark)
