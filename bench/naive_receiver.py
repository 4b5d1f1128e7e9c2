"""The naive baseline for `bench/pipeline_bench.py`: Stripe webhook → Salesforce the way people first write it.

A single-worker synchronous WSGI app (`wsgiref`, one request at a time): verify the signature with stripe-python,
map the event with the same `core.mapping` paysync uses (so both do the same mapping work), then upsert every
resulting record with one REST call each (simple-salesforce `sf.<Object>.upsert("<ExtField>/<id>", body)`) and
answer 200 only when all of them are in Salesforce. A child whose parent does not exist yet is retried once after
upserting the parent as a stub (one more call per parent) — the minimum that makes it work at all.

    PAYSYNC_NAIVE_PORT=8099 PAYSYNC_WEBHOOK_SECRETS=whsec_… PAYSYNC_SALESFORCE_LOGIN_URL=https://127.0.0.1:… \
    PAYSYNC_SALESFORCE_CLIENT_ID=… PAYSYNC_SALESFORCE_CLIENT_SECRET=… PAYSYNC_SALESFORCE_CA_BUNDLE=ca.pem \
    .venv/bin/python bench/naive_receiver.py

`GET /stats` answers JSON: requests, events upserted, records, failures, first receive / last completion
(epoch seconds) and every request's receive → all-records-in-Salesforce latency in seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
import stripe
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from paysync.logs import setup_logging
from paysync.settings import PaysyncSettings, comma_or_line_list
from sinks.payload import stub_record
from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.mapping import map_object

log = logging.getLogger("paysync.bench.naive")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class NaiveSettings(PaysyncSettings):
    """The baseline's configuration (same `PAYSYNC_WEBHOOK_SECRETS` / `PAYSYNC_SALESFORCE_*` names as paysync)."""

    naive_port: int = Field(default=8099, ge=0, le=65535)
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    salesforce_login_url: str = "https://login.salesforce.com"
    salesforce_client_id: str = ""
    salesforce_client_secret: SecretStr = SecretStr("")
    salesforce_ca_bundle: str | None = None
    salesforce_api_version: str = "62.0"

    _split = field_validator("webhook_secrets", mode="before")(comma_or_line_list)


class NaiveReceiver:
    """The WSGI app; `stats()` is what `GET /stats` answers."""

    def __init__(self, settings: NaiveSettings) -> None:
        self.settings = settings
        self.cfg = MappingConfig()
        self.sf = self._login()
        self.lock = threading.Lock()
        self.requests = 0
        self.events = 0
        self.records = 0
        self.failures = 0
        self.first_receive: float | None = None
        self.last_done: float | None = None
        self.latencies: list[float] = []

    def _login(self) -> Salesforce:
        """OAuth client-credentials login, then a plain simple-salesforce client on the returned session."""
        s = self.settings
        session = requests.Session()
        session.trust_env = False
        if s.salesforce_ca_bundle:
            session.verify = s.salesforce_ca_bundle
        resp = session.post(f"{s.salesforce_login_url}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": s.salesforce_client_id,
            "client_secret": s.salesforce_client_secret.get_secret_value()}, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        return Salesforce(instance_url=body["instance_url"], session_id=body["access_token"], session=session,
                          version=s.salesforce_api_version)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        received = time.time()
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/stats" and method == "GET":
            return self._reply(start_response, "200 OK", self.stats())
        if path != "/webhooks/stripe" or method != "POST":
            return self._reply(start_response, "404 Not Found", {"error": "not found"})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length).decode("utf-8")
        header = environ.get("HTTP_STRIPE_SIGNATURE", "")
        event = self._verify(payload, header)
        if event is None:
            return self._reply(start_response, "400 Bad Request", {"error": "bad signature"})
        try:
            written = self._sync(event)
        except (SalesforceError, requests.RequestException, MappingError) as exc:
            with self.lock:
                self.failures += 1
            log.warning("event failed", extra={"event_id": event.get("id"), "error": type(exc).__name__})
            return self._reply(start_response, "500 Internal Server Error", {"error": type(exc).__name__})
        done = time.time()
        with self.lock:
            self.requests += 1
            self.events += 1 if written else 0
            self.records += written
            self.first_receive = self.first_receive or received
            self.last_done = done
            self.latencies.append(done - received)
        return self._reply(start_response, "200 OK", {"received": True})

    def _verify(self, payload: str, header: str) -> dict[str, Any] | None:
        """stripe-python's own check, trying every configured secret."""
        for secret in self.settings.webhook_secrets:
            try:
                stripe.Webhook.construct_event(payload, header, secret.get_secret_value())
                return dict(json.loads(payload))
            except stripe.SignatureVerificationError:
                continue
        return None

    def _sync(self, event: dict[str, Any]) -> int:
        """Map the event and upsert each record with one call; the number of records written."""
        obj = (event.get("data") or {}).get("object") or {}
        object_type = obj.get("object", "")
        meta = EventMeta(event_id=event["id"], event_type=event["type"], created=int(event["created"]),
                         account=event.get("account"), livemode=bool(event.get("livemode")),
                         version=f"{event['created']}:0:{event['id']}")
        try:
            upserts = map_object(object_type, obj, meta, self.cfg)
        except MappingError as exc:
            if exc.code == "UNSUPPORTED_TYPE":
                return 0
            raise
        for record in upserts:
            self._upsert(record)
        return len(upserts)

    def _upsert(self, record: dict[str, Any]) -> None:
        body = dict(record["fields"])
        for parent in record.get("parents") or []:
            body[parent["relationship"]] = {parent["external_id_field"]: parent["external_id"]}
        sobject = getattr(self.sf, record["sobject"])
        if record["external_id_field"] == "Id":
            sobject.update(record["external_id"], body)
            return
        target = f"{record['external_id_field']}/{record['external_id']}"
        try:
            sobject.upsert(target, body)
        except SalesforceError:
            if not record.get("parents"):
                raise
            for parent in record["parents"]:  # the parent may not exist yet: create it as a stub, retry once
                stub = stub_record(parent["sobject"], parent["external_id_field"], parent["external_id"])
                if stub is not None:  # the same minimal parent the sink would insert (required fields filled)
                    fields = {k: v for k, v in stub.items() if k not in ("attributes", parent["external_id_field"])}
                    getattr(self.sf, parent["sobject"]).upsert(
                        f"{parent['external_id_field']}/{parent['external_id']}", fields)
            sobject.upsert(target, body)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"requests": self.requests, "events": self.events, "records": self.records,
                    "failures": self.failures, "first_receive": self.first_receive, "last_done": self.last_done,
                    "latencies": list(self.latencies)}

    @staticmethod
    def _reply(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


class _Server(WSGIServer):
    request_queue_size = 1024  # gunicorn's default backlog is 2048; socketserver's 5 would drop SYNs under load


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return


def main() -> int:
    """Serve on 127.0.0.1:$PAYSYNC_NAIVE_PORT until killed."""
    setup_logging("WARNING")
    settings = NaiveSettings()
    app = NaiveReceiver(settings)
    with make_server("127.0.0.1", settings.naive_port, app, server_class=_Server,
                     handler_class=_QuietHandler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
