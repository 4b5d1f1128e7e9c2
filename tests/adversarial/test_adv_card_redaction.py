"""Free text bound for Salesforce never carries a card number; ids and ordinary numbers are left alone."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pipeline_probe import card_numbers

from core.common import text

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
