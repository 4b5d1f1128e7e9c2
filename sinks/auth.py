"""Logging in to Salesforce: OAuth client credentials, username/password or JWT bearer.

`Authenticator.login()` POSTs `<login_url>/services/oauth2/token` and returns a `Token`
(access token + instance URL). The login URL is injectable (`PAYSYNC_SALESFORCE_LOGIN_URL`): the org's My
Domain URL (client credentials needs it), or the emulator's. The JWT `aud` claim is its own setting
(`PAYSYNC_SALESFORCE_JWT_AUDIENCE`), not the token host. Secrets never reach logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt
import requests

from sinks.settings import SalesforceSettings


class AuthError(Exception):
    """Login failed; `retriable` is True for transient failures (5xx, timeouts)."""

    def __init__(self, message: str, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True)
class Token:
    """A Salesforce session."""

    access_token: str
    instance_url: str
    issued_at: float


def _secret(value: object) -> str:
    return value.get_secret_value() if value is not None else ""  # type: ignore[attr-defined]


class Authenticator:
    """Obtains sessions with the configured flow; one instance per sink."""

    def __init__(self, settings: SalesforceSettings, session: requests.Session) -> None:
        self._s = settings
        self._http = session

    def _form(self) -> dict[str, str]:
        s = self._s
        flow = s.salesforce_auth_flow
        if flow == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": s.salesforce_client_id or "",
                "client_secret": _secret(s.salesforce_client_secret),
            }
        if flow == "password":
            return {
                "grant_type": "password",
                "client_id": s.salesforce_client_id or "",
                "client_secret": _secret(s.salesforce_client_secret),
                "username": s.salesforce_username or "",
                "password": _secret(s.salesforce_password),
            }
        if flow == "jwt":
            claims = {
                "iss": s.salesforce_client_id,
                "sub": s.salesforce_username,
                "aud": s.salesforce_jwt_audience.rstrip("/"),
                "exp": int(time.time()) + 180,
            }
            assertion = jwt.encode(claims, _secret(s.salesforce_private_key), algorithm="RS256")
            return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        raise AuthError(f"auth flow {flow!r} does not log in")

    def login(self) -> Token:
        """A fresh session; raises AuthError."""
        s = self._s
        if s.salesforce_auth_flow == "session":
            return Token(_secret(s.salesforce_access_token), s.salesforce_instance_url or "", time.time())
        url = s.token_url() + "/services/oauth2/token"
        try:
            # verify passed explicitly: REQUESTS_CA_BUNDLE in the environment would override the session's
            resp = self._http.post(url, data=self._form(), timeout=s.salesforce_timeout_s,
                                   verify=s.salesforce_ca_bundle or self._http.verify)
        except requests.RequestException as exc:
            raise AuthError(f"login request failed: {type(exc).__name__}", retriable=True) from None
        if resp.status_code != 200:
            try:
                body = resp.json()
                reason = f"{body.get('error')}: {body.get('error_description')}"
            except ValueError:
                reason = resp.text[:200]
            raise AuthError(f"login refused ({resp.status_code}) {reason}", retriable=resp.status_code >= 500)
        body = resp.json()
        try:
            return Token(body["access_token"], body["instance_url"], time.time())
        except KeyError:
            raise AuthError("token response lacks access_token or instance_url") from None
