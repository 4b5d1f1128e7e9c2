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
