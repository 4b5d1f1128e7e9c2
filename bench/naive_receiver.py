"""The naive baseline for `bench/pipeline_bench.py`: Stripe webhook → Salesforce the way people deploy it.

A WSGI app served by gunicorn with several workers × threads (`gthread`; default 2 × 16, the production set-up
such a handler gets): verify the signature with stripe-python, map the event with the same `core.mapping` paysync
uses (so both do the same mapping work), then upsert every resulting record with one REST call each
(simple-salesforce `sf.<Object>.upsert("<ExtField>/<id>", body)`) and answer 200 only when all of them are in
Salesforce. A child whose parent does not exist yet is retried once after upserting the parent as a stub (one more
call per parent) — the minimum that makes it work at all. Each worker logs in once and shares its client (a
connection pool as large as its thread count) among its threads.

    PAYSYNC_NAIVE_PORT=8099 PAYSYNC_NAIVE_WORKERS=2 PAYSYNC_NAIVE_THREADS=16 PAYSYNC_NAIVE_STATS_DIR=/tmp/naive \
    PAYSYNC_WEBHOOK_SECRETS=whsec_… PAYSYNC_SALESFORCE_LOGIN_URL=https://127.0.0.1:… \
    PAYSYNC_SALESFORCE_CLIENT_ID=… PAYSYNC_SALESFORCE_CLIENT_SECRET=… PAYSYNC_SALESFORCE_CA_BUNDLE=ca.pem \
    .venv/bin/python bench/naive_receiver.py

Each worker writes `<stats dir>/<pid>.ready` once logged in and `<stats dir>/<pid>.json` when it exits (SIGTERM
to the master: graceful stop): requests, events upserted, records, failures, first receive / last completion
(epoch seconds) and every request's receive → all-records-in-Salesforce latency in seconds; `merge_stats` adds
the workers' files up. `GET /stats` answers the same for the one worker that serves it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

import requests
import stripe
from gunicorn.app.base import BaseApplication
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode
from requests.adapters import HTTPAdapter
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
    naive_workers: int = Field(default=2, ge=1, le=64, description="gunicorn worker processes")
    naive_threads: int = Field(default=16, ge=1, le=256, description="gunicorn threads per worker (gthread)")
    naive_stats_dir: str = Field(default="", description="where each worker writes <pid>.ready and <pid>.json")
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
        pool = HTTPAdapter(pool_connections=2, pool_maxsize=max(10, s.naive_threads))
        session.mount("https://", pool)  # one kept-alive connection per thread, as a tuned deployment would
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


def merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' `stats()` added up: counts summed, the earliest receive, the latest completion, all latencies."""
    firsts = [p["first_receive"] for p in parts if p.get("first_receive")]
    lasts = [p["last_done"] for p in parts if p.get("last_done")]
    return {"requests": sum(p["requests"] for p in parts), "events": sum(p["events"] for p in parts),
            "records": sum(p["records"] for p in parts), "failures": sum(p["failures"] for p in parts),
            "first_receive": min(firsts) if firsts else None, "last_done": max(lasts) if lasts else None,
            "latencies": [x for p in parts for x in p["latencies"]], "workers": len(parts)}


def _stats_path(settings: NaiveSettings, suffix: str) -> Path | None:
    return Path(settings.naive_stats_dir) / f"{os.getpid()}{suffix}" if settings.naive_stats_dir else None


def _worker_ready(worker: Any) -> None:
    """gunicorn `post_worker_init`: the worker's app is loaded (logged in); say so in `<pid>.ready`."""
    path = _stats_path(worker.wsgi.settings, ".ready")
    if path is not None:
        path.write_text(str(os.getpid()), encoding="utf-8")


def _worker_exit(server: Any, worker: Any) -> None:
    """gunicorn `worker_exit` (in the worker): its counters into `<pid>.json`."""
    app = getattr(worker, "wsgi", None)
    if isinstance(app, NaiveReceiver):
        path = _stats_path(app.settings, ".json")
        if path is not None:
            path.write_text(json.dumps(app.stats()), encoding="utf-8")


class NaiveServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn, configured in code: `naive_workers` × `naive_threads` (`gthread`), its default backlog of 2048,
    no access log; each worker builds its own `NaiveReceiver` (no preload: no session shared across a fork)."""

    def __init__(self, settings: NaiveSettings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        for key, value in {"bind": f"127.0.0.1:{s.naive_port}", "workers": s.naive_workers,
                           "threads": s.naive_threads, "worker_class": "gthread", "backlog": 2048,
                           "accesslog": None, "loglevel": "warning", "timeout": 120, "graceful_timeout": 30,
                           "post_worker_init": _worker_ready, "worker_exit": _worker_exit}.items():
            self.cfg.set(key, value)

    def load(self) -> NaiveReceiver:
        return NaiveReceiver(self.settings)


def main() -> int:
    """Serve on 127.0.0.1:$PAYSYNC_NAIVE_PORT with gunicorn until SIGTERM (graceful: workers write their stats)."""
    setup_logging("WARNING")
    NaiveServer(NaiveSettings()).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
