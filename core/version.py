"""The order guard's version: `(created, lifecycle rank, event id)`, compared lexicographically, and its text form."""

from __future__ import annotations

Version = tuple[int, tuple[int, ...], str]


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


# The payment status version (`Stripe_Payment__c.Status_Version__c`): `phase/created:rank`, ordered by
# `decode_payment_status_version`. Two Stripe objects write that status (the charge, its dispute), so the order is
# their shared lifecycle, never event time: the dispute `phase` first (PHASE_CHARGE: no dispute yet;
# PHASE_DISPUTED: the charge says disputed, outcome unknown to it; PHASE_OUTCOME: the dispute's own decision),
# then the writing object's `created` and its lifecycle rank. Every part comes from the Stripe snapshot itself,
# so a replayed, re-fetched or backfilled snapshot gets the same version, and `paysync reconcile` expects it.
PHASE_CHARGE = 0
PHASE_DISPUTED = 1
PHASE_OUTCOME = 2
PaymentStatusVersion = tuple[int, int, tuple[int, ...]]


def encode_payment_status_version(phase: int, created: int, rank: tuple[int, ...]) -> str:
    """`phase/created:rank.rank…`, e.g. `2/1700000000:6.1.1`; `decode_payment_status_version` inverts it."""
    return f"{int(phase)}/{int(created)}:{'.'.join(str(int(r)) for r in rank)}"


def decode_payment_status_version(s: str) -> PaymentStatusVersion:
    """Parse `encode_payment_status_version`'s output; ValueError when it is not one."""
    phase, sep, rest = s.partition("/")
    created, colon, rank = rest.partition(":")
    if not sep or not colon:
        raise ValueError(f"not an encoded payment status version: {s!r}")
    return (int(phase), int(created), tuple(int(r) for r in rank.split(".")) if rank else ())
