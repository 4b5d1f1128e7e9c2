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


class EventBuilder:
    """Builds snapshot events (`object: "event"`) the way Stripe shapes them."""

    def __init__(self, api_version: str, pending_webhooks: int) -> None:
        self.api_version = api_version
        self.pending_webhooks = pending_webhooks

    def build(self, event_id: str, event_type: str, obj: dict[str, Any], created: int, account: str | None,
              previous: dict[str, Any] | None, request_id: str | None) -> EventRecord:
        """Serialise `obj` now (a snapshot) into an event envelope."""
        object_json = dumps(obj)
        acct = f'"account":{dumps(account)},' if account else ""
        prev = f',"previous_attributes":{dumps(previous)}' if previous else ""
        req = dumps({"id": request_id, "idempotency_key": None if request_id is None else f"ik-{request_id[4:]}"})
        body = (
            f'{{"id":"{event_id}","object":"event",{acct}"api_version":"{self.api_version}","created":{created},'
            f'"data":{{"object":{object_json}{prev}}},"livemode":false,"pending_webhooks":{self.pending_webhooks},'
            f'"request":{req},"type":"{event_type}"}}'
        )
        return EventRecord(event_id, event_type, created, account, obj["id"], obj["object"], object_json, body)
