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
    # fields the object has only before basil, as a JSON object (`versions.render` splices them into `json`)
    legacy_fields: str | None = None
    # issue 15: the thin event (`thin.py`) the webhook gets instead of `json`, and its fetched form (`/v2/core/events`)
    thin_json: str | None = None
    thin_fetched_json: str | None = None
    # issue 15: `account.application.*` events carry the connected account object they add or remove (`connect.py`)
    account_json: str | None = None


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

    An object carrying `LEGACY_KEY` is serialised without those fields (`json`); the fields are kept apart
    (`legacy_fields`) for `versions.render` to build the pre-basil body only when an old endpoint needs it.
    """

    def __init__(self, api_version: str, pending_webhooks: int) -> None:
        self.api_version = api_version
        self.pending_webhooks = pending_webhooks

    def build(self, event_id: str, event_type: str, obj: dict[str, Any], created: int, account: str | None,
              previous: dict[str, Any] | None, request_id: str | None) -> EventRecord:
        """Serialise `obj` now (a snapshot) into an event envelope (its pre-basil-only fields apart)."""
        legacy = obj.get(LEGACY_KEY)
        clean = obj if legacy is None else {k: v for k, v in obj.items() if k != LEGACY_KEY}
        object_json = dumps(clean)
        acct = f'"account":{dumps(account)},' if account else ""
        prev = f',"previous_attributes":{dumps(previous)}' if previous else ""
        req = dumps({"id": request_id, "idempotency_key": None if request_id is None else f"ik-{request_id[4:]}"})
        body = (
            f'{{"id":"{event_id}","object":"event",{acct}"api_version":"{self.api_version}","created":{created},'
            f'"data":{{"object":{object_json}{prev}}},"livemode":false,"pending_webhooks":{self.pending_webhooks},'
            f'"request":{req},"type":"{event_type}"}}'
        )
        return EventRecord(event_id, event_type, created, account, obj["id"], obj["object"], object_json, body,
                           None if legacy is None else dumps(legacy))
