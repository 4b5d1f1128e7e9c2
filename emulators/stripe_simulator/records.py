"""What the generator yields: events (already serialised, byte-exact) and balance-transaction upserts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def dumps(value: Any) -> str:
    """The one JSON encoding the simulator uses (compact, key order as built): byte-identical for a seed."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class EventRecord:
    """One event: `json` is the exact body delivered and listed; `object_json` the object's snapshot."""

    id: str
    type: str
    created: int
    account: str | None
    object_id: str
    object_type: str
    object_json: str
    json: str
    legacy_json: str | None = None  # the same event at `LEGACY_API_VERSION`, when its shape differs there


@dataclass(slots=True)
class TxnRecord:
    """A balance transaction's current state (emitted again when it joins a payout or becomes available)."""

    id: str
    created: int
    type: str
    account: str | None
    currency: str
    source: str
    payout: str | None
    net: int
    json: str
    paid_out_by: str | None = None  # a manual payout that took it: never listed by `?payout=`, only for the truth


LEGACY_KEY = "_legacy"  # on a scenario object: the fields it has only at the legacy API version (never serialised)


class EventBuilder:
    """Builds snapshot events (`object: "event"`) the way Stripe shapes them.

    An object carrying `LEGACY_KEY` is rendered twice when `legacy_version` is set: at the pinned version without
    those fields (`json`), and at the legacy version with them (`legacy_json`). Other objects have one shape at both
    versions; `versions.render` swaps the envelope's `api_version` for them.
    """

    def __init__(self, api_version: str, pending_webhooks: int, legacy_version: str = "") -> None:
        self.api_version = api_version
        self.pending_webhooks = pending_webhooks
        self.legacy_version = legacy_version

    def build(self, event_id: str, event_type: str, obj: dict[str, Any], created: int, account: str | None,
              previous: dict[str, Any] | None, request_id: str | None) -> EventRecord:
        """Serialise `obj` now (a snapshot) into an event envelope (and its legacy rendering, if it differs)."""
        legacy = obj.get(LEGACY_KEY)
        clean = obj if legacy is None else {k: v for k, v in obj.items() if k != LEGACY_KEY}
        object_json = dumps(clean)
        acct = f'"account":{dumps(account)},' if account else ""
        prev = f',"previous_attributes":{dumps(previous)}' if previous else ""
        req = dumps({"id": request_id, "idempotency_key": None if request_id is None else f"ik-{request_id[4:]}"})

        def envelope(version: str, data_json: str) -> str:
            return (
                f'{{"id":"{event_id}","object":"event",{acct}"api_version":"{version}","created":{created},'
                f'"data":{{"object":{data_json}{prev}}},"livemode":false,"pending_webhooks":{self.pending_webhooks},'
                f'"request":{req},"type":"{event_type}"}}'
            )

        legacy_json = None
        if legacy is not None and self.legacy_version:
            legacy_json = envelope(self.legacy_version, dumps({**clean, **legacy}))
        return EventRecord(event_id, event_type, created, account, obj["id"], obj["object"], object_json,
                           envelope(self.api_version, object_json), legacy_json)
