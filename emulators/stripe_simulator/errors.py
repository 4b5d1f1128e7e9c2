"""Stripe-shaped error responses (`{"error": {...}}`) and the `Request-Id` every response carries."""

from __future__ import annotations

import itertools
import threading

from starlette.responses import Response

from .records import dumps

_counter = itertools.count(1)
_lock = threading.Lock()


def request_id() -> str:
    """A fresh `req_…` id for the `Request-Id` header."""
    with _lock:
        n = next(_counter)
    return f"req_sim{n:017d}"


def json_response(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with Stripe's headers."""
    return Response(body, status_code=status, media_type="application/json",
                    headers={"Request-Id": request_id(), "Stripe-Version": "", **(headers or {})})


def stripe_error(status: int, err_type: str, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    """An error response as Stripe shapes it."""
    error: dict[str, object] = {"message": message, "type": err_type}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return json_response(dumps({"error": error}), status, headers)


def missing(kind: str, object_id: str) -> Response:
    """404 `resource_missing`."""
    return stripe_error(404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing", "id")


def bad_param(message: str, param: str) -> Response:
    """400 `parameter_invalid_…`."""
    return stripe_error(400, "invalid_request_error", message, "parameter_invalid_integer", param)


def unauthorized(key: str | None) -> Response:
    """401 as Stripe answers a missing or wrong API key."""
    if not key:
        msg = ("You did not provide an API key. You need to provide your API key in the Authorization header, "
               "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
    else:
        msg = f"Invalid API Key provided: {key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}"
    return stripe_error(401, "invalid_request_error", msg, headers={"WWW-Authenticate": 'Bearer realm="Stripe"'})


def rate_limited() -> Response:
    """429 as Stripe answers a request over the rate limit."""
    return stripe_error(429, "rate_limit_error",
                        "Request rate limit exceeded. Learn more about rate limits here "
                        "https://stripe.com/docs/rate-limits.", "rate_limit",
                        headers={"Stripe-Should-Retry": "true"})
