"""The Event Destinations API (v2, issue 15): `POST /v2/core/event_destinations` (create), `GET
/v2/core/event_destinations` (list), `GET /v2/core/event_destinations/{id}` (retrieve); a destination of type
`webhook_endpoint` with `event_payload: thin` is sent the thin event (`thin.py`) of every event it enabled.

As docs.stripe.com "Create an event destination" (v2) documents it: `enabled_events` ("The list of events to
enable for this endpoint"), `event_payload` (enum `snapshot` | `thin`), `name` and `type` (enum
`amazon_eventbridge` | `webhook_endpoint`) are required; `events_from` ("Where events should be routed from":
`self` "Receive events from the account that owns the event destination", `other_accounts` "Receive events from
accounts connected to the account that owns the event destination"); `include` may ask for
`webhook_endpoint.signing_secret`. "The Event Destination object": `id` (`ed_test_…`), `object:
"v2.core.event_destination"`, `created`/`updated` ISO strings, `description`, `enabled_events`, `event_payload`,
`events_from`, `livemode`, `metadata`, `name`, `snapshot_api_version`, `status: "enabled"`, `status_details`,
`type`, `webhook_endpoint {signing_secret, url}` (`signing_secret` null unless included).
Thin destinations enable thin event names (`v1.charge.succeeded`, stripe-python 16.1 `LOOKUP_TYPE`); stricter
than in doubt, a name the simulator does not send is a 400. Not modelled (400 here): `amazon_eventbridge`, and
snapshot destinations (the snapshot webhook is the one `/_sim/config` sets: `webhook_url`).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import _api_key
from .errors import json_response, missing, stripe_error, unauthorized
from .records import EventRecord, dumps
from .store import Store
from .thin import iso_created, thin_bodies, thin_id
from .webhook_endpoints import KNOWN_EVENT_TYPES
from .webhooks import Deliverer, DeliveryKnobs

THIN_EVENT_TYPES = frozenset(f"v1.{name}" for name in KNOWN_EVENT_TYPES)
EVENTS_FROM = ("self", "other_accounts")


def _bad(message: str, param: str) -> Response:
    return stripe_error(400, "invalid_request_error", message, "parameter_invalid", param)


class EventDestinations:
    """The destinations of the simulated account and one `Deliverer` per thin webhook destination."""

    def __init__(self, api_key: str, store: Store, knobs: DeliveryKnobs) -> None:
        self.api_key, self.store, self.knobs = api_key, store, knobs
        self._destinations: dict[str, dict[str, Any]] = {}
        self._deliverers: dict[str, Deliverer] = {}
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        """Starlette routes (v2: JSON bodies, Bearer key)."""
        return [Route("/v2/core/event_destinations", self._collection, methods=["GET", "POST"]),
                Route("/v2/core/event_destinations/{id}", self._one, methods=["GET"])]

    async def _collection(self, request: Request) -> Response:
        if _api_key(request) != self.api_key:
            return unauthorized(_api_key(request))
        if request.method == "GET":
            with self._lock:
                listed = [_public(d) for d in reversed(self._destinations.values())]
            return json_response(dumps({"data": listed, "next_page_url": None, "previous_page_url": None}))
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _bad("The request body is not valid JSON.", "body")
        return self._create(body if isinstance(body, dict) else {})

    async def _one(self, request: Request) -> Response:
        if _api_key(request) != self.api_key:
            return unauthorized(_api_key(request))
        with self._lock:
            found = self._destinations.get(request.path_params["id"])
        if found is None:
            return missing("event destination", request.path_params["id"])
        include = request.query_params.getlist("include")
        return json_response(dumps(_public(found, "webhook_endpoint.signing_secret" in include)))

    def _create(self, body: dict[str, Any]) -> Response:
        refused = _refusal(body)
        if refused is not None:
            return refused
        now = iso_created(int(time.time()))
        destination = {
            "id": "ed_test_61" + secrets.token_hex(20), "object": "v2.core.event_destination", "created": now,
            "description": body.get("description") or "", "enabled_events": list(dict.fromkeys(body["enabled_events"])),
            "event_payload": "thin", "events_from": list(body.get("events_from") or ["self"]),
            "livemode": self.api_key.startswith(("sk_live_", "rk_live_")), "metadata": body.get("metadata") or {},
            "name": body["name"], "snapshot_api_version": None, "status": "enabled", "status_details": None,
            "type": "webhook_endpoint", "updated": now,
            "webhook_endpoint": {"signing_secret": "whsec_" + secrets.token_urlsafe(24),
                                 "url": body["webhook_endpoint"]["url"]},
        }
        knobs = dataclasses.replace(self.knobs, webhook_url=destination["webhook_endpoint"]["url"],
                                    webhook_secrets=[destination["webhook_endpoint"]["signing_secret"]])
        with self._lock:
            self._destinations[destination["id"]] = destination
            self._deliverers[destination["id"]] = Deliverer(self.store, knobs)
        return json_response(dumps(_public(destination, "webhook_endpoint.signing_secret" in (body.get("include") or []))))

    # -- delivery -----------------------------------------------------------------------------------------
    def deliver(self, records: list[EventRecord]) -> None:
        """Send each thin destination the thin events it enabled, from the accounts it routes from."""
        with self._lock:
            targets = [(self._destinations[i], d) for i, d in self._deliverers.items()]
        if not targets:
            return
        rows: list[tuple[str, str, str]] = []
        for record in records:
            wanted = [(dest, d) for dest, d in targets if f"v1.{record.type}" in dest["enabled_events"]
                      and ("other_accounts" if record.account else "self") in dest["events_from"]]
            if not wanted:
                continue
            thin = record.thin_json
            if thin is None:  # not drawn thin for the main webhook: made (and stored) for the destinations only
                request_id = (json.loads(record.json).get("request") or {}).get("id")
                thin, fetched = thin_bodies(record, request_id)
                rows.append((thin_id(record.id), record.account or "", fetched))
            for _, deliverer in wanted:
                deliverer.submit(record.id, thin)
        self.store.add_thin_events(rows)

    def flush(self) -> None:
        """Release what every destination's reordering window holds."""
        for deliverer in list(self._deliverers.values()):
            deliverer.flush()

    def pending(self) -> int:
        """Deliveries not yet over, across destinations."""
        return sum(d.pending() for d in list(self._deliverers.values()))

    def stats(self) -> dict[str, dict[str, int]]:
        """Delivery counters per destination id."""
        return {i: dataclasses.asdict(d.stats) for i, d in list(self._deliverers.items())}

    def stop(self) -> None:
        """Stop every destination's workers."""
        for deliverer in list(self._deliverers.values()):
            deliverer.stop()


def _refusal(body: dict[str, Any]) -> Response | None:
    """The 400 a create gets, or None when it is one the simulator serves."""
    for name in ("enabled_events", "event_payload", "name", "type"):
        if not body.get(name):
            return stripe_error(400, "invalid_request_error", f"Missing required param: {name}.",
                                "parameter_missing", name)
    if body["event_payload"] not in ("snapshot", "thin"):
        return _bad(f"Invalid event_payload: {body['event_payload']!r}; must be one of snapshot, thin.", "event_payload")
    if body["type"] not in ("amazon_eventbridge", "webhook_endpoint"):
        return _bad(f"Invalid type: {body['type']!r}; must be one of amazon_eventbridge, webhook_endpoint.", "type")
    if body["type"] != "webhook_endpoint" or body["event_payload"] != "thin":
        return _bad("The simulator serves thin webhook_endpoint destinations only (snapshot webhooks: /_sim/config).",
                    "event_payload")
    url = (body.get("webhook_endpoint") or {}).get("url") if isinstance(body.get("webhook_endpoint"), dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return stripe_error(400, "invalid_request_error", "Missing required param: webhook_endpoint.url.",
                            "parameter_missing", "webhook_endpoint.url")
    events = body["enabled_events"]
    if not isinstance(events, list) or any(e not in THIN_EVENT_TYPES for e in events):
        return _bad("Invalid enabled_events: every name must be a thin event type the account sends "
                    "(v1.<event type>).", "enabled_events")
    if any(e not in EVENTS_FROM for e in body.get("events_from") or []):
        return _bad("Invalid events_from: must be self or other_accounts.", "events_from")
    return None


def _public(destination: dict[str, Any], with_secret: bool = False) -> dict[str, Any]:
    """The destination as shown: `webhook_endpoint.signing_secret` null unless `include`d."""
    if with_secret:
        return destination
    return {**destination, "webhook_endpoint": {**destination["webhook_endpoint"], "signing_secret": None}}
