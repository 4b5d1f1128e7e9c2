"""The live simulator: the read API, admin endpoints (`/_sim/*`), a generation thread and webhook delivery.

Admin endpoints (no API key; bound to 127.0.0.1):
- `POST /_sim/generate` `{"events": N, "rate": ev/s, "burst": n, "seed": s, …ScenarioParams fields}` starts a run;
- `GET /_sim/status` generated counts, delivery counters, `running`, `done` (generation over, nothing pending);
- `POST /_sim/config` delivery knobs (`webhook_url`, `webhook_secrets`, `duplicate_rate`, `reorder_window`,
  `drop_rate`, `drop_marks_failed`, `delivery_concurrency`, `max_attempts`, `retry_base`, `timeout`,
  `webhook_api_version` / `connect_webhook_api_version`: the API versions of the account endpoint (platform events,
  default the pinned one) and of the Connect endpoint (connected accounts' events, default 2024-06-20), both at
  `webhook_url`; see `versions.py`) and `rate_limit` (requests/s over `/v1/*`, 0 = none);
- `GET /_sim/stats` API requests counted by endpoint; `GET /_sim/stats/accounts` the same per account asked as
  (`""` = the platform); `GET /_sim/truth` the truth export as JSON lines.

Issue 15: an event drawn thin (`thin_event_share`, `thin.py`) is delivered as its thin event instead of the snapshot
("The payload of thin events is unversioned", so no endpoint version applies to it); the snapshot is still listed.
The accounts connected before a run are listed by `GET /v1/accounts` from its start (`connect.py`). Thin event
destinations registered by `POST /v2/core/event_destinations` (`event_destinations.py`) get the thin event of every
event they enabled, each at its own URL with its own signing secret; `done` waits for their deliveries too.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .api import ReadApi
from .params import ScenarioParams
from .records import EventRecord, TxnRecord
from .connect import initial_accounts
from .event_destinations import EventDestinations
from .scenario import Scenario
from .store import Store
from .truth import truth_lines
from .versions import endpoint_version, render
from .webhook_endpoints import WebhookEndpoints  # DOCTOR hook: the Webhook Endpoints API
from .webhooks import Deliverer, DeliveryKnobs

log = logging.getLogger(__name__)
_PARAM_FIELDS = {f.name for f in dataclasses.fields(ScenarioParams)}
_KNOB_FIELDS = {f.name for f in dataclasses.fields(DeliveryKnobs)} - {"seed"}


class Simulator:
    """State and threads of one simulated account."""

    def __init__(self, store: Store, api_key: str, knobs: DeliveryKnobs, rate_limit: float,
                 defaults: ScenarioParams) -> None:
        self.store = store
        self.api = ReadApi(store, api_key, rate_limit)
        self.knobs = knobs
        self.deliverer = Deliverer(store, knobs)
        self.destinations = EventDestinations(api_key, store, knobs)  # issue 15: thin event destinations
        self.defaults = defaults
        self.events_generated = 0
        self.records_written = 0
        self.runs = 0
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._next_start: int | None = None

    @property
    def running(self) -> bool:
        """True while a generation run is going."""
        return self._thread is not None and self._thread.is_alive()

    def start_run(self, body: dict[str, Any]) -> None:
        """Start a generation run in a thread (ValueError for bad parameters or one already running)."""
        if self.running:
            raise ValueError("a generation run is already going")
        unknown = set(body) - _PARAM_FIELDS - {"rate", "burst"}
        if unknown:
            raise ValueError(f"unknown parameters: {sorted(unknown)}")
        fields = {k: v for k, v in body.items() if k in _PARAM_FIELDS}
        params = dataclasses.replace(self.defaults, **fields)
        if self.runs and "seed" not in body:
            params.seed = self.defaults.seed + 7919 * self.runs  # fresh ids for every further run
        if self._next_start is not None and "start_time" not in body:
            params.start_time = self._next_start
        params.pending_webhooks = 1 if self.knobs.webhook_url else 0
        params.__post_init__()
        rate = float(body.get("rate") or 0)
        burst = int(body.get("burst") or 0)
        self.runs += 1
        self._thread = threading.Thread(target=self._run, args=(params, rate, burst), daemon=True, name="generate")
        self._thread.start()

    def _run(self, params: ScenarioParams, rate: float, burst: int) -> None:
        try:
            self._generate(params, rate, burst)
        except Exception as exc:  # noqa: BLE001 - reported through /_sim/status
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("generation failed")

    def _generate(self, params: ScenarioParams, rate: float, burst: int) -> None:
        step = burst or (max(1, int(rate // 20)) if rate else 2000)
        started = time.monotonic()
        batch: list[EventRecord | TxnRecord] = []
        events_in_batch = 0
        last_created = params.start_time
        scenario = Scenario(params)
        self.store.add_accounts(initial_accounts(scenario))
        for record in scenario.records():
            batch.append(record)
            if isinstance(record, EventRecord):
                events_in_batch += 1
                last_created = record.created
            if events_in_batch >= step:
                self._flush(batch)
                batch, events_in_batch = [], 0
                if rate:
                    wait = self.events_generated / rate - (time.monotonic() - started)
                    if wait > 0:
                        time.sleep(wait)
        self._flush(batch)
        self.deliverer.flush()
        self.destinations.flush()
        self._next_start = last_created + 1

    def _flush(self, batch: list[EventRecord | TxnRecord]) -> None:
        if not batch:
            return
        self.store.write(batch)
        self.records_written += len(batch)
        for record in batch:
            if isinstance(record, EventRecord):
                self.events_generated += 1
                if record.thin_json is not None:
                    self.deliverer.submit(record.id, record.thin_json)
                    continue
                version = endpoint_version(record.account, self.knobs.webhook_api_version,
                                           self.knobs.connect_webhook_api_version)
                body = render(record, version)
                if body is None:
                    self.deliverer.stats.not_sent_version += 1
                    continue
                self.deliverer.submit(record.id, body)
        self.destinations.deliver([r for r in batch if isinstance(r, EventRecord)])

    def configure(self, body: dict[str, Any]) -> None:
        """Apply delivery knobs and the rate limit."""
        unknown = set(body) - _KNOB_FIELDS - {"rate_limit", "visibility_max_delay_s"}  # POLLER hook: the latter
        if unknown:
            raise ValueError(f"unknown knobs: {sorted(unknown)}")
        if "rate_limit" in body:
            self.api.set_rate_limit(float(body["rate_limit"] or 0))
        if "visibility_max_delay_s" in body:  # POLLER hook (issue 15): list entries late by 0-N s (`visibility.py`)
            self.api.visibility.max_delay_s = float(body["visibility_max_delay_s"] or 0)
        for name in _KNOB_FIELDS & set(body):
            setattr(self.knobs, name, body[name])
        if "delivery_concurrency" in body:
            old, self.deliverer = self.deliverer, Deliverer(self.store, self.knobs)
            old.stop()

    def status(self) -> dict[str, Any]:
        """Generation and delivery counters."""
        pending = self.deliverer.pending()
        return {
            "running": self.running, "done": not self.running and pending + self.destinations.pending() == 0,
            "error": self.error,
            "runs": self.runs, "events_generated": self.events_generated, "records_written": self.records_written,
            "deliveries": {**dataclasses.asdict(self.deliverer.stats), "pending": pending},
            "store": self.store.counts(), "connected_accounts": self.store.connected_accounts(),
            "destinations": self.destinations.stats(),
        }

    def stop(self) -> None:
        """Stop delivery threads."""
        self.deliverer.stop()
        self.destinations.stop()


def build_app(sim: Simulator) -> Starlette:
    """The Starlette app: `/v1/*` read API plus `/_sim/*` admin."""

    async def generate(request: Request) -> Response:
        try:
            sim.start_run(await _json(request))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"started": True, "run": sim.runs}, status_code=202)

    async def config(request: Request) -> Response:
        try:
            sim.configure(await _json(request))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        knobs = {k: v for k, v in dataclasses.asdict(sim.knobs).items() if k != "webhook_secrets"}
        return JSONResponse({"knobs": knobs, "rate_limit": sim.api.bucket.rate})

    async def status(request: Request) -> Response:
        return JSONResponse(sim.status())

    async def stats(request: Request) -> Response:
        return JSONResponse(dict(sim.api.counts))

    async def stats_by_account(request: Request) -> Response:
        out: dict[str, dict[str, int]] = {}
        for (account, label), n in list(sim.api.by_account.items()):
            out.setdefault(account, {})[label] = n
        return JSONResponse(out)

    async def truth(request: Request) -> Response:
        def lines() -> Iterator[str]:
            for line in truth_lines(sim.store):
                yield line + "\n"
        return StreamingResponse(lines(), media_type="application/x-ndjson")

    admin = [Route("/_sim/generate", generate, methods=["POST"]), Route("/_sim/config", config, methods=["POST"]),
             Route("/_sim/status", status), Route("/_sim/stats", stats), Route("/_sim/truth", truth),
             Route("/_sim/stats/accounts", stats_by_account)]
    endpoints = WebhookEndpoints(sim.api.api_key)  # DOCTOR hook: before the read API's /v1/{resource} catch-all
    return Starlette(routes=admin + endpoints.routes() + sim.destinations.routes() + sim.api.routes())


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("body must be a JSON object")
    return value
