"""A pending upsert: one Salesforce record, possibly coalesced from several Kafka messages.

Coalescing merges partial upserts in offset order: the field maps and parent references are
merged (a later value of a field wins), never replaced, because different stream producers write
different fields of the same record — except a versioned status (`STATUS_FIELDS`): its status and version
travel as a pair, and the pair with the newer version wins whatever the offsets (a replayed older write later in
the batch never replaces a newer one before `sinks.status_versions` sees it). Every message merged in is
remembered as an `Origin`, so its offset is committed (or dead-lettered) together with the record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from core import registry
from core.version import PaymentStatusVersion, Version, decode_payment_status_version, decode_version

FieldValue = bool | int | str | None

# Parents before children, so relationship external ids resolve (docs/data-model.md): the registry's write
# order, then the sync-error rows (which point at nothing the sink writes).
OBJECT_ORDER: tuple[str, ...] = (*registry.write_order(), "Stripe_Sync_Error__c")


# Versioned statuses: object -> (status field, its version field, the version's decoder). Every writer of the
# status also writes the version; `sinks.status_versions` never writes an older one over a newer one.
StatusOrder = Version | PaymentStatusVersion
STATUS_FIELDS: Mapping[str, tuple[str, str, Callable[[str], StatusOrder]]] = MappingProxyType({
    "Opportunity": ("Stripe_Payment_Status__c", "Stripe_Payment_Status_Version__c", decode_version),
    "Order": ("Stripe_Payment_Status__c", "Stripe_Payment_Status_Version__c", decode_version),
    "Stripe_Payment__c": ("Status__c", "Status_Version__c", decode_payment_status_version),
})


def status_order(sobject: str, text: Any) -> StatusOrder | None:
    """The decoded status version of `sobject` (comparable within one object type); None when absent or not one
    (an unversioned write, older than any versioned one)."""
    spec = STATUS_FIELDS.get(sobject)
    if spec is None or not isinstance(text, str) or not text:
        return None
    try:
        return spec[2](text)
    except ValueError:
        return None


def is_older(sobject: str, candidate: Any, applied: Any) -> bool:
    """Whether the status version `candidate` is older than `applied` (unversioned is older than versioned);
    False when nothing versioned is applied. An equal version is the same Stripe state, so the same value:
    writing it again is harmless, and heals a hand edit (a replay, `paysync reconcile --repair`)."""
    old, new = status_order(sobject, applied), status_order(sobject, candidate)
    if old is None:
        return False
    return new is None or new < old


def object_rank(sobject: str) -> int:
    """Write order of an object type; unknown types go after the known ones (before sync errors)."""
    try:
        return OBJECT_ORDER.index(sobject)
    except ValueError:
        return len(OBJECT_ORDER) - 1


@dataclass(frozen=True)
class Origin:
    """Where one merged message came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    event_id: str | None
    ingested_at_ms: int | None
    event_created: int | None = None  # the Stripe event's `created` (unix seconds), from the upsert's version


@dataclass(frozen=True)
class ParentRef:
    """A lookup by the parent's external id."""

    relationship: str
    sobject: str
    external_id_field: str
    external_id: str

    @property
    def key(self) -> str:
        return f"{self.sobject}:{self.external_id}"


@dataclass
class PendingRecord:
    """One record waiting to be written; `origins` lists every message it holds, oldest first."""

    sobject: str
    external_id_field: str
    external_id: str
    fields: dict[str, FieldValue]
    parents: dict[str, ParentRef]
    origins: list[Origin]
    size: int = 0
    attempts: int = 0  # failed writes so far (transient or missing parent)
    parent_waits: int = 0  # writes that failed because a parent was missing
    first_failure_ms: int | None = None
    not_before: float = 0.0  # monotonic time before which it is not retried
    first_seen: float = field(default_factory=time.monotonic)
    stub_tried: bool = False
    bulk_refused: bool = False  # a Bulk job with it did not complete: Composite from now on
    salesforce_id: str | None = None  # the record's Id, once a write answered it

    @property
    def key(self) -> str:
        return f"{self.sobject}:{self.external_id}"

    @classmethod
    def from_upsert(cls, upsert: dict[str, Any], origin: Origin) -> "PendingRecord":
        """Build from a decoded `paysync.SalesforceUpsert`."""
        parents = {p["relationship"]: ParentRef(**p) for p in upsert.get("parents") or []}
        return cls(
            sobject=upsert["sobject"],
            external_id_field=upsert["external_id_field"],
            external_id=upsert["external_id"],
            fields=dict(upsert.get("fields") or {}),
            parents=parents,
            origins=[origin],
            size=len(origin.value or b""),
        )

    def merge(self, later: "PendingRecord") -> None:
        """Fold a later upsert of the same record into this one: later field values win, except a versioned
        status (`STATUS_FIELDS`), where an older pair later in the batch does not replace a newer one."""
        spec = STATUS_FIELDS.get(self.sobject)
        kept: tuple[FieldValue, FieldValue] | None = None
        if spec is not None and spec[0] in self.fields and spec[0] in later.fields \
                and is_older(self.sobject, later.fields.get(spec[1]), self.fields.get(spec[1])):
            kept = self.fields[spec[0]], self.fields.get(spec[1])
        self.fields.update(later.fields)
        if spec is not None and kept is not None:
            self.fields[spec[0]], self.fields[spec[1]] = kept
        self.parents.update(later.parents)
        self.origins.extend(later.origins)
        self.size += later.size
        if later.external_id_field != self.external_id_field:
            self.external_id_field = later.external_id_field

    @property
    def event_id(self) -> str | None:
        """The Stripe event id of the latest merged message."""
        for origin in reversed(self.origins):
            if origin.event_id:
                return origin.event_id
        return None

    def note_failure(self) -> None:
        self.attempts += 1
        if self.first_failure_ms is None:
            self.first_failure_ms = int(time.time() * 1000)
