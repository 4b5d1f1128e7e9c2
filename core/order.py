"""The order guard: a deterministic version for every Stripe object snapshot.

Stripe delivers out of order and `created` has one-second resolution, so a version is
`(created, lifecycle rank, event id)` compared lexicographically: the later event wins; in the same
second the state later in the object's own lifecycle wins (a paid invoice never returns to open,
`amount_refunded` never decreases, a closed dispute stays closed); the event id settles the rest so
that replays always give the same answer. Each rank component is monotone over the object's life,
so the lexicographic order extends the lifecycle's partial order. The ranks are the types' own
(`StripeType.rank`, in `core.types`).
"""

from __future__ import annotations

from typing import Any

from core import registry
from core.version import Version, decode_version, encode_version, is_newer

__all__ = ["Version", "decode_version", "encode_version", "is_newer", "lifecycle_rank", "version_of"]


def lifecycle_rank(object_type: str, obj: dict[str, Any]) -> tuple[int, ...]:
    """How far along its lifecycle `obj` is; higher is later. Never raises (unknown type: `()`)."""
    spec = registry.find(object_type)
    return () if spec is None else spec.rank(obj)


def version_of(object_type: str, obj: dict[str, Any], created: int, event_id: str | None) -> Version:
    """The version of this snapshot of `obj` as seen in an event created at `created` (unix seconds)."""
    return (int(created), lifecycle_rank(object_type, obj), event_id or "")
