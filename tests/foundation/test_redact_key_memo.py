"""paysync.redact remembers the short keys it found nothing in (issue 16: the field names of every event were
searched for card numbers, IBANs and secrets again and again). The memo must never change what is stored: a key
holding any of them is redacted however often it recurs, and only keys `redact_text` leaves as they are are kept.
Fails on the old code (70b1e54 and a7d5d3c: no memo)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import paysync.redact as redact_module
from paysync.paths import REPO_ROOT
from paysync.redact import REDACTED_IBAN, REDACTED_SECRET, redact, redact_text

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "stripe"
DIRTY_KEYS = ("4242424242424242", "GB82 WEST 1234 5698 7654 32", "sk_live_" + "a1b2c3d4e5f6g7h8", "whsec_abc123")


def _documents() -> list[Any]:
    return [json.loads(path.read_text(), parse_float=Decimal) for path in sorted(FIXTURES.rglob("*.json"))]


def test_the_memo_changes_nothing_stored_and_holds_only_clean_short_keys() -> None:
    redact_module._CLEAN_KEYS.clear()
    docs = _documents()
    first = [redact(doc) for doc in docs]  # fills the memo
    assert len(redact_module._CLEAN_KEYS) > 100
    assert [redact(doc) for doc in docs] == first  # from the memo
    for key in redact_module._CLEAN_KEYS:
        assert redact_text(key) == key and len(key) <= redact_module._CLEAN_KEY_LEN


def test_a_key_with_a_card_number_iban_or_secret_is_redacted_every_time() -> None:
    doc = {"id": "ch_1", "object": "charge", "metadata": {key: "v" for key in DIRTY_KEYS}}
    for _ in range(3):
        out, changes = redact(doc)
        assert changes == len(DIRTY_KEYS)
        assert set(out["metadata"]) == {"[REDACTED-PAN]", REDACTED_IBAN, REDACTED_SECRET, REDACTED_SECRET}
    assert not set(DIRTY_KEYS) & redact_module._CLEAN_KEYS


def test_the_memo_stays_bounded_and_skips_long_keys() -> None:
    long_key = "k" * (redact_module._CLEAN_KEY_LEN + 1)
    metadata = {f"order_ref_{n}": "x" for n in range(3 * redact_module._CLEAN_KEYS_MAX)}
    redact({"metadata": {**metadata, long_key: "x"}})
    assert len(redact_module._CLEAN_KEYS) <= redact_module._CLEAN_KEYS_MAX
    assert long_key not in redact_module._CLEAN_KEYS
