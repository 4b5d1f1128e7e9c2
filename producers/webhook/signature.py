"""Stripe-Signature verification: HMAC-SHA256 over `"<t>.<raw body>"`, constant-time, several secrets.

Header `t=<unix>,v1=<hex>[,v1=<hex>…]`; only `v1` counts; any `v1` matching any configured secret
passes (secret rotation). Unlike stripe-python, timestamps too far in the *future* fail as well.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


class SignatureError(ValueError):
    """Verification failed; `reason` is the metrics label (missing_signature, bad_signature …)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_MAX_V1 = 8


def parse_header(header: str) -> tuple[int, list[bytes]]:
    """(timestamp, v1 signatures as lowercase hex bytes) of a Stripe-Signature header."""
    timestamp: int | None = None
    signatures: list[bytes] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise SignatureError("malformed_signature", "t is not unix seconds")
            timestamp = int(value)
        elif name == "v1" and len(signatures) < _MAX_V1:
            signatures.append(value.strip().lower().encode("ascii", "replace"))
    if timestamp is None:
        raise SignatureError("malformed_signature", "no timestamp in Stripe-Signature")
    if not signatures:
        raise SignatureError("malformed_signature", "no v1 signature in Stripe-Signature")
    return timestamp, signatures


def sign(body: bytes, secret: bytes, timestamp: int) -> bytes:
    """The hex v1 signature of `body` at `timestamp` (as bytes)."""
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest().encode("ascii")


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[bytes],
    now: float,
    tolerance_s: int = 300,
    future_tolerance_s: int = 60,
) -> int:
    """Return the header's timestamp if `body` is signed by one of `secrets` recently enough; else SignatureError."""
    if not header:
        raise SignatureError("missing_signature", "no Stripe-Signature header")
    timestamp, candidates = parse_header(header)
    if timestamp < now - tolerance_s:
        raise SignatureError("timestamp_too_old", "timestamp outside the tolerance zone")
    if timestamp > now + future_tolerance_s:
        raise SignatureError("timestamp_in_future", "timestamp too far in the future")
    matched = False
    for secret in secrets:
        expected = sign(body, secret, timestamp)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("bad_signature", "no signature matches the payload")
    return timestamp
