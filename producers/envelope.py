"""Stripe event JSON -> `paysync.StripeEventEnvelope` record and its Kafka key (pure functions).

Snapshot events (`object: "event"`) name their object in `data.object`; thin events
(`object: "v2.core.event"`) only in `related_object` (absent for some: then the event is its own
object). Objects without an id (`balance`, in `balance.available`) are keyed by type and
account. Anything else is `NotAnEvent`. Keys come from `paysync.keys.event_key`, so every
producer (webhook, poller, backfill) puts one object's events in one partition.

The stored `raw_event` is redacted (`paysync.redact`: card and bank details cut to brand and last4, card
numbers, IBANs and secrets in free text replaced) before any producer encodes it; a redacted one carries
`"paysync_redacted": {"rules": 1, "verified": …}` — `stripe-signature` for a webhook (its signature was
checked over the raw body before redaction), `stripe-api` for what a poller or the backfill fetched.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from paysync.keys import event_key
from paysync.records import EventSource, StripeEventEnvelope
from paysync.redact import RedactionError, redact_json_text, redact_parsed

Source = EventSource
_INT64_MAX = 2**63 - 1
THIN_OBJECT = "v2.core.event"


class NotAnEvent(ValueError):
    """The JSON is valid but is not a Stripe event paysync can carry; the message says which field."""


def _str(value: Any, name: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise NotAnEvent(f"{name} must be a non-empty string")
    return value


def _created(value: Any, thin: bool) -> int:
    if thin and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
        except ValueError:
            raise NotAnEvent("created is not an ISO-8601 timestamp") from None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX // 1000:
        raise NotAnEvent("created must be unix seconds")
    return value


def _thin_subject(event: dict[str, Any], event_id: str) -> tuple[str | None, str, dict[str, Any]]:
    """(account, object type, object) of a thin event: its `related_object`, else the event itself."""
    account = _str(event.get("context"), "context", optional=True)
    related = event.get("related_object")
    if related is None:
        return account, THIN_OBJECT, {"id": event_id}
    if not isinstance(related, dict):
        raise NotAnEvent("related_object must be an object")
    object_type = str(_str(related.get("type"), "related_object.type"))
    return account, object_type, {"id": _str(related.get("id"), "related_object.id")}


def _snapshot_subject(event: dict[str, Any]) -> tuple[str | None, str, dict[str, Any]]:
    """(account, object type, object) of a snapshot event: its `data.object`."""
    account = _str(event.get("account"), "account", optional=True)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise NotAnEvent("data.object must be an object")
    object_type = str(_str(obj.get("object"), "data.object.object"))
    _str(obj.get("id"), "data.object.id", optional=True)
    return account, object_type, obj


def rendered_version(event: dict[str, Any]) -> str | None:
    """The API version an event was rendered at (`api_version`), as its envelope records it; None when absent."""
    version = event.get("api_version")
    return version if isinstance(version, str) else None


def envelope(event: Any, raw_event: str, source: Source, received_at_ms: int,
             *, exact: bool = False) -> tuple[str, StripeEventEnvelope]:
    """(Kafka key, envelope record) for one parsed event, `raw_event` redacted; NotAnEvent when it is not one.

    `exact`: `event` is `raw_event` parsed with `parse_float=Decimal` (or the value `raw_event` was serialised
    from by `compact_json`), so it is redacted as it is instead of `raw_event` being parsed again.
    """
    if not isinstance(event, dict):
        raise NotAnEvent("the body is not a JSON object")
    kind = event.get("object")
    thin = kind == THIN_OBJECT
    if kind != "event" and not thin:
        raise NotAnEvent("object must be 'event' or 'v2.core.event'")
    event_id = str(_str(event.get("id"), "id"))
    event_type = str(_str(event.get("type"), "type"))
    livemode = event.get("livemode")
    if not isinstance(livemode, bool):
        raise NotAnEvent("livemode must be a boolean")
    api_version = rendered_version(event)
    account, object_type, obj = _thin_subject(event, event_id) if thin else _snapshot_subject(event)
    try:
        key = event_key(object_type, obj)
    except ValueError:  # id-less singletons such as `balance` (balance.available): one key per account
        key = f"{object_type}:{account}" if account else object_type
    object_id = obj.get("id") or key
    verified = "stripe-signature" if source == "webhook" else "stripe-api"
    try:
        mark = {"verified": verified}
        stored = redact_parsed(event, raw_event, mark) if exact else redact_json_text(raw_event, mark)
    except RedactionError as exc:
        raise NotAnEvent(str(exc)) from None
    record: StripeEventEnvelope = {
        "event_id": event_id,
        "event_type": event_type,
        "created": _created(event.get("created"), thin),
        "api_version": api_version,
        "livemode": livemode,
        "account": account,
        "source": source,
        "received_at": received_at_ms,
        "object_id": object_id,
        "object_type": object_type,
        "thin": thin,
        "raw_event": stored,
    }
    return key, record
