"""Signature verification against stripe-python's own signer: rotation, tolerance both ways, forgery."""

from __future__ import annotations

import time

import pytest
import stripe

from producers.webhook.signature import SignatureError, verify

BODY = '{"id":"evt_1","object":"event"}'
NOW = 1_800_000_000


def _header(secret: str, ts: int = NOW, body: str = BODY) -> str:
    return stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=ts)


def test_valid_signature_from_stripe_python_passes() -> None:
    assert verify(BODY.encode(), _header("whsec_one"), [b"whsec_one"], NOW) == NOW


def test_any_configured_secret_or_any_v1_passes_during_rotation() -> None:
    assert verify(BODY.encode(), _header("whsec_new"), [b"whsec_old", b"whsec_new"], NOW) == NOW
    both = _header("whsec_other") + "," + _header("whsec_old").split(",")[1]
    assert verify(BODY.encode(), both, [b"whsec_old"], NOW) == NOW


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("v1=abc", "malformed_signature"),
        (f"t={NOW}", "malformed_signature"),
        ("t=abc,v1=00", "malformed_signature"),
        (f"t={NOW},v0=" + "0" * 64, "malformed_signature"),
        (f"t={NOW},v1=" + "0" * 64, "bad_signature"),
    ],
)
def test_malformed_or_forged_headers_fail(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as err:
        verify(BODY.encode(), header, [b"whsec_one"], NOW)
    assert err.value.reason == reason


def test_wrong_secret_and_tampered_body_fail() -> None:
    with pytest.raises(SignatureError, match="no signature"):
        verify(BODY.encode(), _header("whsec_attacker"), [b"whsec_one"], NOW)
    with pytest.raises(SignatureError, match="no signature"):
        verify(BODY.encode() + b" ", _header("whsec_one"), [b"whsec_one"], NOW)


def test_old_timestamps_fail_beyond_tolerance() -> None:
    assert verify(BODY.encode(), _header("s", NOW - 299), [b"s"], NOW, tolerance_s=300)
    with pytest.raises(SignatureError) as err:
        verify(BODY.encode(), _header("s", NOW - 301), [b"s"], NOW, tolerance_s=300)
    assert err.value.reason == "timestamp_too_old"


def test_future_timestamps_fail_although_stripe_python_accepts_them() -> None:
    future = int(time.time()) + 3600
    header = _header("s", future)
    stripe.WebhookSignature.verify_header(BODY, header, "s", tolerance=300)  # the hole we close
    with pytest.raises(SignatureError) as err:
        verify(BODY.encode(), header, [b"s"], time.time(), future_tolerance_s=60)
    assert err.value.reason == "timestamp_in_future"
    assert verify(BODY.encode(), _header("s", NOW + 30), [b"s"], NOW, future_tolerance_s=60)
