"""The HTTPS server: routes requests to auth, REST, Composite, Collections, query, Bulk 2.0 and the admin endpoints, and
applies the cross-cutting rules — session check, API call counting (`Sforce-Limit-Info`), the daily limit
(403 `REQUEST_LIMIT_EXCEEDED`), injected 503s and latency.

The generic login host (`role="login"`) serves only the logins; everything else is on the My Domain host.
Admin endpoints (no auth, My Domain host): see `admin.py`.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulators.salesforce_emulator import admin, rest
from emulators.salesforce_emulator.bulk import Bulk
from emulators.salesforce_emulator.composite import composite
from emulators.salesforce_emulator.certs import TlsFiles
from emulators.salesforce_emulator.org import Org
from emulators.salesforce_emulator.wire import Request, Response, error

log = logging.getLogger("paysync.sf_emulator")
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(?:/(.*))?$")
_SOAP = re.compile(r"^/services/Soap/u/(\d+\.\d)")


class Router:
    """Pure request → response dispatch (no sockets), so it can be driven directly."""

    def __init__(self, org: Org) -> None:
        self.org, self.bulk = org, Bulk(org)

    def _kind(self, parts: list[str]) -> str:
        head = parts[0] if parts else ""
        if head == "jobs":
            return "bulk"
        if head in ("query", "queryAll"):
            return "query"
        if head == "limits":
            return "limits"
        if head == "composite":
            return "composite" if len(parts) == 1 else "collections"
        return "rest"

    def dispatch(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if req.host == "login":
            return self._login_host(req, path)
        if path.startswith("/_emulator/"):
            return self._admin(req, path)
        faults = self.org.faults
        if path == "/services/oauth2/token" and req.method == "POST":
            faults.count("auth")
            return self.org.auth.oauth_token(req)
        soap = _SOAP.match(path)
        if soap and req.method == "POST":
            faults.count("auth")
            return self.org.auth.soap_login(req, soap.group(1))
        if path == "/services/data":
            return rest.versions(self.org.auth.base_url)
        m = _DATA.match(path)
        if not m:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        resp = self._api(req, m.group(1), [p for p in (m.group(2) or "").split("/") if p])
        # "Limit Info Header": "This response header is returned in each request to REST API (except for calls to
        # the Versions URI, /, which do not count towards your org's limit)." — errors included.
        resp.headers["Sforce-Limit-Info"] = faults.limit_info()
        return resp

    def _api(self, req: Request, version: str, parts: list[str]) -> Response:
        """One REST / Bulk API call: session, budget, injected 503, then the latency model around the handler."""
        faults = self.org.faults
        if not self.org.auth.valid(req.header("authorization")):
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if not faults.count(self._kind(parts)):
            return error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if faults.roll_503():
            return Response(503, b"Service Unavailable", {"Content-Type": "text/plain"})
        self.org.dml.reset_saved()
        resp = self._route(req, version, parts)
        delay_ms = faults.knobs.latency_ms + faults.knobs.latency_per_record_ms * self.org.dml.saved()
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        return resp

    def _login_host(self, req: Request, path: str) -> Response:
        """The generic login host serves logins only (OAuth token endpoint and SOAP `login`)."""
        if path == "/services/oauth2/token" and req.method == "POST":
            self.org.faults.count("auth")
            return self.org.auth.oauth_token(req)
        soap = _SOAP.match(path)
        if soap and req.method == "POST":
            self.org.faults.count("auth")
            return self.org.auth.soap_login(req, soap.group(1))
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _route(self, req: Request, version: str, parts: list[str]) -> Response:
        if not parts:
            return rest.resources(version)
        head, tail = parts[0], parts[1:]
        if head == "limits":
            return rest.limits(self.org)
        if head == "sobjects":
            return rest.sobjects(self.org, req, version, tail)
        if head in ("query", "queryAll"):
            return rest.query(self.org, req, version, tail)
        if head == "composite" and not tail:
            return composite(req, version, self._route, self.org.faults.shuffled)
        if head == "composite" and tail[:1] == ["sobjects"]:
            return rest.collections(self.org, req, version, tail[1:])
        if head == "jobs" and tail[:1] == ["ingest"]:
            return self.bulk.handle(req, version, tail[1:])
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _admin(self, req: Request, path: str) -> Response:
        return admin.handle(self.org, req, path)


def _handler(router: Router, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SalesforceEmulator/1.0"

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self._body()
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            headers = {k.lower(): v for k, v in self.headers.items()}
            req = Request(self.command, url.path, query, headers, body, role)
            try:
                resp = router.dispatch(req)
            except Exception:  # a bug must answer 500 like Salesforce, not kill the connection
                log.exception("unhandled error", extra={"path": url.path, "method": self.command})
                resp = error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
            self.send_response(resp.status)
            for key, value in resp.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            log.debug("request", extra={"line": format % args})

    return Handler


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def make_server(router: Router, host: str, port: int, tls: TlsFiles | None, role: str = "mydomain") -> EmulatorServer:
    """A bound (not yet serving) server; HTTPS when `tls` is given; `role` is "mydomain" or "login"."""
    server = EmulatorServer((host, port), _handler(router, role))
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(tls.server_cert), str(tls.server_key))
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server
