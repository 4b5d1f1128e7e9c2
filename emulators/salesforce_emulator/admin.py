"""Admin endpoints of the emulator (no auth, My Domain host only; not part of Salesforce):

- `POST /_emulator/faults` JSON knobs (see `faults.Knobs`) → the knobs now;
- `POST /_emulator/limits/reset` restores the daily budget; `GET /_emulator/stats` counts calls;
- `POST /_emulator/gate {"value": "pi_1"}` holds the next insert of that external id value between its duplicate
  check and its write; `POST /_emulator/gate/release` lets it go (deterministic write-race tests);
- `POST /_emulator/seed {"sobject", "record", "owner": "other"}` inserts a record as an admin would (validation
  rules and required fields skipped), owned by another user when `owner` is "other" → `{"id"}`;
- `GET /_emulator/events` → `{"events": [...]}`: the platform event messages published so far (`sobject`, fields,
  `Id`, `EventUuid`, `ReplayId`), since Salesforce offers no SOQL on events; `POST /_emulator/events/clear`;
- `GET /_emulator/history` → `{"history": [...]}`: field history entries of objects with history enabled.
"""

from __future__ import annotations

import json
from typing import Any

from emulators.salesforce_emulator import access  # DOCTOR hook
from emulators.salesforce_emulator.org import Org
from emulators.salesforce_emulator.rest import split_record
from emulators.salesforce_emulator.values import FieldError
from emulators.salesforce_emulator.wire import Request, Response, json_response


def handle(org: Org, req: Request, path: str) -> Response:
    faults = org.faults
    try:
        body: Any = json.loads(req.body or b"{}")
    except ValueError as exc:
        return json_response(400, {"error": str(exc)})
    if path == "/_emulator/faults" and req.method == "POST":
        try:
            faults.knobs.update(body)
        except (ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, faults.stats()["knobs"])
    if path == "/_emulator/limits/reset" and req.method == "POST":
        faults.reset_limits()
        return json_response(200, faults.stats())
    if path == "/_emulator/stats" and req.method == "GET":
        return json_response(200, {**faults.stats(), "org_mode": org.mode.name,
                                   "hidden_ids": sorted(org.mode.sharing.hidden)})
    if path == "/_emulator/gate" and req.method == "POST":
        faults.gate.arm(str(body.get("value")))
        return json_response(200, faults.gate.state())
    if path == "/_emulator/gate/release" and req.method == "POST":
        with org.dml.gate_cond:
            faults.gate.released.set()
            org.dml.gate_cond.notify_all()
        return json_response(200, faults.gate.state())
    if path == "/_emulator/permission_sets":  # DOCTOR hook: assign / unassign (access.py)
        return access.admin(org.access, req.method, body)
    if path == "/_emulator/seed" and req.method == "POST":
        return _seed(org, body)
    if path == "/_emulator/events" and req.method == "GET":
        with org.store.lock:
            return json_response(200, {"events": list(org.store.published)})
    if path == "/_emulator/history" and req.method == "GET":
        with org.store.lock:
            return json_response(200, {"history": list(org.store.history)})
    if path == "/_emulator/events/clear" and req.method == "POST":
        with org.store.lock:
            org.store.published.clear()
        return json_response(200, {"events": []})
    return json_response(404, {"error": "unknown admin endpoint"})


def _seed(org: Org, body: dict[str, Any]) -> Response:
    obj = org.schema.get(str(body.get("sobject", "")))
    record = body.get("record")
    if obj is None or not isinstance(record, dict):
        return json_response(400, {"error": "seed needs a known sobject and a record object"})
    try:
        values, refs = split_record(record)
    except FieldError as err:
        return json_response(400, {"error": err.message})
    with org.store.lock:
        txn = org.store.txn()
        result = org.dml.save(txn, obj, values, refs, "insert", as_admin=True)
        (txn.commit if result.success else txn.rollback)()
    if not result.success or result.id is None:
        return json_response(400, {"errors": result.as_json()["errors"]})
    if body.get("owner") == "other":
        org.mode.sharing.hidden.add(result.id)
    return json_response(201, {"id": result.id})
