"""The Webhook Endpoints API: `POST /v1/webhook_endpoints` (create), `GET /v1/webhook_endpoints` (list),
`GET /v1/webhook_endpoints/{id}` (retrieve), `DELETE /v1/webhook_endpoints/{id}`.

As docs.stripe.com "Webhook Endpoints" documents it:
- "A webhook endpoint must have a url and a list of enabled_events. You may optionally specify the Boolean connect
  parameter." (Create a webhook endpoint) — `url` and `enabled_events` are required, `api_version`, `description`,
  `connect` optional;
- the object: `id`, `object: "webhook_endpoint"`, `api_version` ("nullable string: The API version events are
  rendered as for this webhook endpoint"; null when not given, as in the documented example), `application`,
  `created`, `description`, `enabled_events` ("['*'] indicates that all events are enabled"), `livemode`,
  `metadata`, `status` ("It can be enabled or disabled"), `url`, and `secret`: "The endpoint's secret, used to
  generate webhook signatures. Only returned at creation." — so list and retrieve leave it out.
Event types are checked against the ones this simulator knows (stricter than in doubt: Stripe refuses unknown
ones with 400 `invalid_request_error` on `enabled_events`; the simulator's list is the documented events of the
resources it serves).
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import _api_key  # the read API's own key parsing (Bearer or Basic)
from .errors import json_response, missing, stripe_error, unauthorized
from .records import dumps

# The "Events" sections of docs.stripe.com/api/<resource> for the resources the simulator serves.
KNOWN_EVENT_TYPES = frozenset({
    "charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded", "charge.succeeded",
    "charge.updated", "charge.refund.updated", "refund.created", "refund.failed", "refund.updated",
    "charge.dispute.closed", "charge.dispute.created", "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn", "charge.dispute.updated", "customer.created", "customer.deleted",
    "customer.updated", "payout.canceled", "payout.created", "payout.failed", "payout.paid",
    "payout.reconciliation_completed", "payout.updated", "invoice.created", "invoice.deleted",
    "invoice.finalization_failed", "invoice.finalized", "invoice.marked_uncollectible", "invoice.overdue",
    "invoice.paid", "invoice.payment_action_required", "invoice.payment_failed", "invoice.payment_succeeded",
    "invoice.sent", "invoice.upcoming", "invoice.updated", "invoice.voided", "invoice.will_be_due",
    "payment_intent.amount_capturable_updated", "payment_intent.canceled", "payment_intent.created",
    "payment_intent.partially_funded", "payment_intent.payment_failed", "payment_intent.processing",
    "payment_intent.requires_action", "payment_intent.succeeded", "invoice_payment.paid", "balance.available",
    "account.updated", "account.application.authorized", "account.application.deauthorized",
})


def _list_param(form: list[tuple[str, str]], name: str) -> list[str] | None:
    """`name[]=a&name[]=b` or `name[0]=a&name[1]=b` (how Stripe's libraries encode arrays); None when absent."""
    values = [v for k, v in form if k == f"{name}[]" or (k.startswith(f"{name}[") and k[len(name) + 1:-1].isdigit())]
    return values if values or any(k.startswith(f"{name}[") for k, _ in form) else None


class WebhookEndpoints:
    """The endpoints registered on the simulated account, in creation order (newest first when listed)."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self._endpoints: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        """Starlette routes; mount them before the read API's `/v1/{resource}` catch-all."""
        return [Route("/v1/webhook_endpoints", self._collection, methods=["GET", "POST"]),
                Route("/v1/webhook_endpoints/{id}", self._one, methods=["GET", "DELETE"])]

    async def _collection(self, request: Request) -> Response:
        if _api_key(request) != self.api_key:
            return unauthorized(_api_key(request))
        if request.method == "POST":
            form = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
            return self._create(form)
        return self._list(request)

    async def _one(self, request: Request) -> Response:
        if _api_key(request) != self.api_key:
            return unauthorized(_api_key(request))
        endpoint_id = request.path_params["id"]
        with self._lock:
            found = self._endpoints.get(endpoint_id)
            if found is not None and request.method == "DELETE":
                del self._endpoints[endpoint_id]
                return json_response(dumps({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}))
        if found is None:
            return missing("webhook_endpoint", endpoint_id)
        return json_response(dumps(_public(found)))

    def _create(self, form: list[tuple[str, str]]) -> Response:
        values = dict(form)
        url = values.get("url", "")
        events = _list_param(form, "enabled_events")
        if not url:
            return stripe_error(400, "invalid_request_error", "Missing required param: url.", "parameter_missing", "url")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            return stripe_error(400, "invalid_request_error", f"Invalid URL: {url}", "url_invalid", "url")
        if not events:
            return stripe_error(400, "invalid_request_error", "Missing required param: enabled_events.",
                                "parameter_missing", "enabled_events")
        unknown = [e for e in events if e != "*" and e not in KNOWN_EVENT_TYPES]
        if unknown:
            return stripe_error(400, "invalid_request_error", f"Invalid enabled_events: {unknown[0]!r} is not a "
                                "known event type.", "parameter_invalid_string", "enabled_events")
        endpoint_id = "we_" + secrets.token_hex(12)
        endpoint: dict[str, Any] = {
            "id": endpoint_id, "object": "webhook_endpoint",
            "api_version": values.get("api_version") or None, "application": None, "created": int(time.time()),
            "description": values.get("description") or None, "enabled_events": list(dict.fromkeys(events)),
            "livemode": self.api_key.startswith(("sk_live_", "rk_live_")), "metadata": {}, "status": "enabled",
            "url": url, "secret": "whsec_" + secrets.token_urlsafe(24),
        }
        with self._lock:
            self._endpoints[endpoint_id] = endpoint
        return json_response(dumps(endpoint))

    def _list(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            return stripe_error(400, "invalid_request_error", "Invalid integer: limit must be between 1 and 100",
                                "parameter_invalid_integer", "limit")
        with self._lock:
            listed = [_public(e) for e in reversed(self._endpoints.values())]
        after = request.query_params.get("starting_after")
        if after:
            ids = [e["id"] for e in listed]
            if after not in ids:
                return missing("webhook_endpoint", after)
            listed = listed[ids.index(after) + 1:]
        page = listed[: int(raw)]
        body = {"object": "list", "data": page, "has_more": len(listed) > len(page), "url": "/v1/webhook_endpoints"}
        return json_response(dumps(body))


def _public(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as list and retrieve show it: without its secret ("Only returned at creation")."""
    return {k: v for k, v in endpoint.items() if k != "secret"}
