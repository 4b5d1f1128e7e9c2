"""Free text bound for Salesforce never carries a card number; ids and ordinary numbers are left alone; and the raw
payloads kept on Kafka (paysync.redact) lose card numbers and IBANs wherever they sit."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_probe import card_numbers

from core.common import text
from paysync.redact import redact

PANS = ["4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005", "6011111111111117"]


def test_card_numbers_in_free_text_are_redacted_ids_are_not() -> None:
    for pan in PANS:
        out = text(f"paid with {pan}, thanks", 255)
        assert out is not None and not card_numbers(out) and "[REDACTED-PAN]" in out
    assert text("cus_00000000000000", 255) == "cus_00000000000000"
    assert text("ch_4242424242424242", 255) == "ch_4242424242424242"
    assert text("order 12345 of 2026-11-28", 255) == "order 12345 of 2026-11-28"


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=40), pan=st.sampled_from(PANS), suffix=st.text(max_size=40),
       length=st.integers(1, 255))
def test_no_card_number_survives_text(prefix: str, pan: str, suffix: str, length: int) -> None:
    out = text(f"{prefix} {pan} {suffix}", length) or ""
    assert pan.replace(" ", "").replace("-", "") not in out.replace(" ", "").replace("-", "")
    assert len(out) <= length


IBANS = ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "FR1420041010050500013M02606"]


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(max_size=30), pan=st.sampled_from(PANS), iban=st.sampled_from(IBANS),
       suffix=st.text(max_size=30), depth=st.integers(0, 6))
def test_no_card_number_or_iban_survives_in_a_raw_payload(prefix: str, pan: str, iban: str, suffix: str,
                                                          depth: int) -> None:
    """Free text anywhere in a stored payload (values, keys, nested lists) loses card numbers and IBANs."""
    leaf: object = {"note": f"{prefix} {pan} {suffix}", f"{pan}": f"{prefix} {iban} {suffix}"}
    for _ in range(depth):
        leaf = {"items": [leaf, "ok"]}
    out, _ = redact({"id": "ch_4242424242424242", "metadata": leaf})
    flat = json.dumps(out["metadata"], ensure_ascii=False).replace(" ", "").replace("-", "")
    assert pan.replace(" ", "").replace("-", "") not in flat and iban.replace(" ", "") not in flat
    assert out["id"] == "ch_4242424242424242"
