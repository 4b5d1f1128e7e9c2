"""The few Stripe calls the doctor and `paysync stripe` make, with the pinned API version. The key goes in the
Authorization header only; nothing here logs or returns it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx

from producers.stripe_api import PINNED_API_VERSION


class StripeCallError(Exception):
    """No answer from Stripe (network, TLS, timeout); the message names the base URL, never the key."""


class StripeClient:
    """GET/POST against `base_url` with `api_key`; answers are `(status, json body)`."""

    def __init__(self, api_key: str, base_url: str, timeout_s: float = 20.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {api_key}", "Stripe-Version": PINNED_API_VERSION})
        self.base_url = base_url

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        return self._send("GET", path, params=params)

    def post(self, path: str, form: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
        return self._send("POST", path, content=urlencode(form),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})

    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StripeCallError(f"{method} {self.base_url}{path}: {type(exc).__name__}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        return resp.status_code, body if isinstance(body, dict) else {}

    def close(self) -> None:
        self._http.close()


def error_message(body: dict[str, Any]) -> str:
    """Stripe's error message of an answer (`error.message`), without anything that could echo a key."""
    err = body.get("error")
    message = str(err.get("message", "")) if isinstance(err, dict) else ""
    return "" if "API Key" in message or "api key" in message.lower() else message


def key_mode(api_key: str) -> str | None:
    """"test" or "live" from a secret (`sk_`) or restricted (`rk_`) key's prefix; None for anything else."""
    for prefix, mode in (("sk_test_", "test"), ("rk_test_", "test"), ("sk_live_", "live"), ("rk_live_", "live")):
        if api_key.startswith(prefix):
            return mode
    return None
