"""Logins and sessions: OAuth2 token endpoint (client_credentials, password, JWT bearer) and SOAP `login`.

Two hosts, as on Salesforce: the generic login host (`login_url`, standing in for login.salesforce.com /
test.salesforce.com) and the org's My Domain (`base_url`, also the instance URL). The client credentials flow is
refused on the login host; JWT bearer, password and SOAP logins work on both.

A session is an opaque access token that expires `session_ttl_s` after issue (read live from the knobs), then
every call with it gets 401 `INVALID_SESSION_ID`. Bad credentials get Salesforce's error shapes: OAuth JSON
`{"error","error_description"}` (400) and SOAP faults `INVALID_LOGIN` (500).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import parse_qs

import jwt

from emulators.salesforce_emulator.faults import Faults
from emulators.salesforce_emulator.wire import Request, Response, json_response

ORG_ID = "00D5g000004ORGXEAW"
USER_ID = "0055g00000USERXAAQ"
_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class Credentials:
    """What the emulator accepts; `jwt_public_key` (PEM) enables the JWT bearer flow for `client_id`."""

    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    jwt_public_key: bytes | None = None


class Auth:
    """Issues and checks access tokens."""

    def __init__(self, creds: Credentials, faults: Faults, base_url: str, login_url: str = "") -> None:
        self.creds, self.faults, self.base_url, self.login_url = creds, faults, base_url, login_url
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = ORG_ID[:15] + "!" + secrets.token_urlsafe(48)
        with self._lock:
            self._sessions[token] = time.monotonic()
        return token

    def valid(self, authorization: str) -> bool:
        """True if the `Authorization: Bearer …` (or OAuth …) header carries a live session."""
        parts = authorization.split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("bearer", "oauth"):
            return False
        with self._lock:
            issued = self._sessions.get(parts[1].strip())
        return issued is not None and time.monotonic() - issued < self.faults.knobs.session_ttl_s

    def _password_ok(self, password: str) -> bool:
        good = (self.creds.password, self.creds.password + self.creds.security_token)
        return any(hmac.compare_digest(password.encode(), g.encode()) for g in good)

    def _token_body(self) -> dict[str, str]:
        issued_at = str(int(time.time() * 1000))
        ident = f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"
        sig = base64.b64encode(hmac.new(self.creds.client_secret.encode(), (ident + issued_at).encode(),
                                        hashlib.sha256).digest()).decode()
        return {"access_token": self.issue(), "instance_url": self.base_url, "id": ident, "token_type": "Bearer",
                "issued_at": issued_at, "signature": sig, "scope": "api"}

    def oauth_token(self, req: Request) -> Response:
        """`POST /services/oauth2/token` (form-encoded)."""
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8"), keep_blank_values=True).items()}
        grant = form.get("grant_type", "")
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = req.header("authorization")
        if basic.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt(form.get("assertion", ""))
        if grant not in ("password", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        # "Migrate from OAuth Username-Password to Client Credentials Flow" (help.salesforce.com 000886201): "The
        # client credentials flow doesn't support calls to login.salesforce.com or test.salesforce.com. [...] Instead
        # of login.salesforce.com, switch to the org's My Domain login URL". The body is what such orgs answer (the
        # exact text is not in the docs; taken from the issue's field report).
        if grant == "client_credentials" and req.host == "login":
            return _oauth_error("invalid_grant", "request not supported on this domain")
        if client_id != self.creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret.encode(), self.creds.client_secret.encode()):
            return _oauth_error("invalid_client", "invalid client credentials")
        # Password flow on either host: "Understanding the Username-Password OAuth Authentication Flow": "a POST
        # request to the appropriate Salesforce token request endpoint, such as
        # https://login.salesforce.com/services/oauth2/token" — the generic host, and the org's own (My Domain).
        if grant == "password" and not (form.get("username") == self.creds.username
                                        and self._password_ok(form.get("password", ""))):
            return _oauth_error("invalid_grant", "authentication failure")
        return json_response(200, self._token_body())

    def _jwt(self, assertion: str) -> Response:
        if self.creds.jwt_public_key is None:
            return _oauth_error("invalid_grant", "invalid assertion")
        # "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": the audience "must be
        # https://login.salesforce.com, https://test.salesforce.com, or (community) the community URL" — never the
        # My Domain / token host. Salesforce answers `invalid_grant` "audience is invalid" (forcedotcom/cli#3325).
        audiences = [*_AUDIENCES, self.login_url] if self.login_url else list(_AUDIENCES)
        try:
            claims = jwt.decode(assertion, self.creds.jwt_public_key, algorithms=["RS256"],
                                audience=audiences, options={"require": ["iss", "sub", "aud", "exp"]})
        except jwt.InvalidAudienceError:
            return _oauth_error("invalid_grant", "audience is invalid")
        except jwt.ExpiredSignatureError:
            return _oauth_error("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.creds.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if claims.get("sub") != self.creds.username:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        return json_response(200, self._token_body())

    def soap_login(self, req: Request, version: str) -> Response:
        """`POST /services/Soap/u/{version}` with a partner `login` envelope, on either host (the SOAP login is
        answered by login.salesforce.com and by My Domain; no page restricting it was found)."""
        try:
            root = ET.fromstring(req.body)
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        username = password = ""
        for el in root.iter():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "username":
                username = el.text or ""
            elif tag == "password":
                password = el.text or ""
        if username != self.creds.username or not self._password_ok(password):
            return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        token = self.issue()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{self.base_url}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
            f"<serverUrl>{self.base_url}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{token}</sessionId><userId>{USER_ID}</userId><userInfo>"
            f"<organizationId>{ORG_ID}</organizationId><userName>{self.creds.username}</userName>"
            f"<sessionSecondsValid>{int(self.faults.knobs.session_ttl_s)}</sessionSecondsValid>"
            "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode(), {"Content-Type": "text/xml; charset=utf-8"})


def _oauth_error(code: str, description: str) -> Response:
    return json_response(400, {"error": code, "error_description": description})


def _soap_fault(code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>"
        f'<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(500, body.encode(), {"Content-Type": "text/xml; charset=utf-8"})
