"""REST API handlers: versions, limits, describe, single-record create/get/update/upsert, sObject Collections
(create, update, upsert by external id; ≤ 200 records, `allOrNone`), SOQL query/queryAll with `nextRecordsUrl`.

Top-level errors use `errorCode`; per-record results use `statusCode` (see `SaveResult.as_json`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from emulators.salesforce_emulator import access as access_mod  # DOCTOR hook
from emulators.salesforce_emulator import describe as describe_mod
from emulators.salesforce_emulator import query as query_mod
from emulators.salesforce_emulator.auth import USER_ID
from emulators.salesforce_emulator.dml import SaveResult
from emulators.salesforce_emulator.metadata import ObjectDef
from emulators.salesforce_emulator.org import Org
from emulators.salesforce_emulator.soql import SoqlError, parse
from emulators.salesforce_emulator.values import FieldError
from emulators.salesforce_emulator.wire import Request, Response, error, json_response

MAX_COLLECTION = 200
VERSIONS = [f"{v}.0" for v in range(50, 63)]


def split_record(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, Any]]]:
    """A JSON record → (plain values, relationship refs `{"Payout__r": ("Stripe_Payout_Id__c", "po_1")}`)."""
    values: dict[str, Any] = {}
    refs: dict[str, tuple[str, Any]] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            keys = [k for k in value if k != "attributes"]
            if len(keys) != 1:
                raise FieldError("INVALID_FIELD", f"A relationship ({key}) must name exactly one external id field",
                                 [])
            refs[key] = (keys[0], value[keys[0]])
        else:
            values[key] = value
    return values, refs


def versions(base_url: str) -> Response:
    return json_response(200, [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS])


def resources(version: str) -> Response:
    base = f"/services/data/v{version}"
    names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
    return json_response(200, {n: f"{base}/{n}" for n in names})


def limits(org: Org) -> Response:
    """`/limits`. "Limits": "This resource is available in REST API version 29.0 and later for API users with the
    View Setup and Configuration permission." Without it: 403, as "Status Codes and Error Responses" puts it: "The
    request has been refused. Verify that the logged-in user has appropriate permissions." (errorCode
    INSUFFICIENT_ACCESS: Salesforce's code for a missing permission; the exact text of this answer is not in the docs)."""
    if not org.view_setup:
        return error(403, "INSUFFICIENT_ACCESS", "You do not have the level of access necessary to perform the "
                     "operation you requested. Please contact the owner of the record or your administrator if access "
                     "is necessary.")
    k, used = org.faults.knobs, org.faults.api_used
    return json_response(200, {
        "DailyApiRequests": {"Max": k.daily_limit, "Remaining": max(k.daily_limit - used, 0)},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DataStorageMB": {"Max": 1024, "Remaining": 1024},
    })


def _object(org: Org, name: str) -> ObjectDef | Response:
    obj = org.schema.get(name)
    if obj is None:
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def _save_one(org: Org, obj: ObjectDef, body: Any, mode: str, ext_field: str | None = None,
              ext_value: str | None = None) -> SaveResult:
    if not isinstance(body, dict):
        return SaveResult(None, False, errors=[FieldError("JSON_PARSER_ERROR", "Expected a JSON object", [])])
    try:
        values, refs = split_record(body)
    except FieldError as err:
        return SaveResult(None, False, errors=[err])
    with org.store.lock:
        txn = org.store.txn()
        result = org.dml.save(txn, obj, values, refs, mode, ext_field, ext_value)
        (txn.commit if result.success else txn.rollback)()
    return result


def _record_json(obj: ObjectDef, rec: dict[str, Any], version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": obj.name,
                                          "url": f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"}}
    out.update({name: rec.get(name) for name in obj.fields})
    return out


def _failed(result: SaveResult) -> Response:
    err = result.errors[0]
    status = 404 if err.code == "NOT_FOUND" else 400
    return json_response(status, [{"message": e.message, "errorCode": e.code, "fields": e.fields}
                                  for e in result.errors])


def _by_id(org: Org, req: Request, obj: ObjectDef, record_id: str, body: Any, version: str) -> Response:
    """GET, PATCH (update; 204 No Content) or DELETE `/sobjects/{Object}/{id}`; records hidden by sharing are 404."""
    rid = org.store.find_unique(obj, "Id", record_id)
    if req.method == "PATCH":
        data = dict(body) if isinstance(body, dict) else body
        if isinstance(data, dict):
            data["Id"] = record_id
        result = _save_one(org, obj, data, "update")
        return Response(204) if result.success else _failed(result)
    if rid is None or not org.mode.sharing.visible(rid):
        return error(404, "NOT_FOUND", "The requested resource does not exist")
    if req.method == "GET":
        return json_response(200, _record_json(obj, org.store.records[obj.name][rid], version))
    with org.store.lock:
        txn = org.store.txn()
        txn.delete(obj, rid)
        txn.commit()
    return Response(204)


def sobjects(org: Org, req: Request, version: str, parts: list[str]) -> Response:
    """`/sobjects[/{Object}[/describe | /{id} | /{ExtField}/{value}]]`."""
    if not parts:
        return json_response(200, describe_mod.global_describe(org.schema, version))
    obj = _object(org, parts[0])
    if isinstance(obj, Response):
        return obj
    rest = [unquote(p) for p in parts[1:]]
    body: Any = None
    if req.method in ("POST", "PATCH"):
        try:
            body = req.json()
        except ValueError as exc:
            return error(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
    if not rest:
        if req.method == "GET":
            return json_response(200, {"objectDescribe": describe_mod.object_summary(obj, version),
                                       "recentItems": []})
        if req.method == "POST":
            result = _save_one(org, obj, body, "insert")
            return json_response(201, result.as_json(False)) if result.success else _failed(result)
    elif rest == ["describe"] and req.method == "GET":
        described = describe_mod.describe(org.schema, obj, version)
        return json_response(200, access_mod.apply_to_describe(org.access, described))  # DOCTOR hook: FLS
    elif len(rest) == 1 and req.method in ("GET", "PATCH", "DELETE"):
        return _by_id(org, req, obj, rest[0], body, version)
    elif len(rest) == 2:
        field_name, value = rest
        if req.method == "GET":
            f = obj.field(field_name)
            rid = org.store.find_unique(obj, f.name, value) if f and (f.external_id or f.name == "Id") else None
            if rid is None or not org.mode.sharing.visible(rid):
                return error(404, "NOT_FOUND", "The requested resource does not exist")
            return json_response(200, _record_json(obj, org.store.records[obj.name][rid], version))
        if req.method == "PATCH":
            result = _save_one(org, obj, body, "upsert", field_name, value)
            if not result.success:
                return _failed(result)
            return json_response(201 if result.created else 200, result.as_json())
    return error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed. Allowed are GET,PATCH,POST,DELETE")


def collections(org: Org, req: Request, version: str, parts: list[str]) -> Response:
    """`/composite/sobjects` (POST create, PATCH update) and `/composite/sobjects/{Object}/{ExtField}` (PATCH)."""
    try:
        body = req.json()
    except ValueError as exc:
        return error(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return error(400, "INVALID_FIELD", "records: required and must be a list")
    if len(records) > MAX_COLLECTION:
        return error(400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than "
                     f"{MAX_COLLECTION} records into this call")
    all_or_none = bool(body.get("allOrNone", False))
    if parts and req.method == "PATCH" and len(parts) == 2:
        obj = _object(org, parts[0])
        if isinstance(obj, Response):
            return obj
        mode, ext_field = "upsert", parts[1]
        if ext_field.lower() == "id":
            # "Upsert Records Using sObject Collections": "Only external ids are supported. Don't use record ids."
            # and "If the request isn't well formed, the API returns a 400 Bad Request HTTP Status." (errorCode
            # INVALID_FIELD as for any field that is not an external id; the text is the emulator's.)
            return error(400, "INVALID_FIELD", f"Id is not an External ID field for {obj.name}: sObject Collections "
                         "upsert supports only external ids, not record ids", ["Id"])
    elif not parts and req.method in ("POST", "PATCH"):
        obj, mode, ext_field = None, "insert" if req.method == "POST" else "update", None
    else:
        return error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed.")
    results: list[SaveResult] = []
    with org.store.lock:
        txn = org.store.txn()
        for record in records:
            results.append(_collection_item(org, txn, obj, record, mode, ext_field))
        if all_or_none and not all(r.success for r in results):
            txn.rollback()
            results = [r if not r.success else SaveResult(None, False, errors=[FieldError(
                "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and "
                "the request was using AllOrNone header", [])]) for r in results]
        else:
            txn.commit()
    return json_response(200, [r.as_json(mode == "upsert") for r in results])


def _collection_item(org: Org, txn: Any, obj: ObjectDef | None, record: Any, mode: str,
                     ext_field: str | None) -> SaveResult:
    if not isinstance(record, dict):
        return SaveResult(None, False, errors=[FieldError("JSON_PARSER_ERROR", "record must be an object", [])])
    type_name = (record.get("attributes") or {}).get("type") if isinstance(record.get("attributes"), dict) else None
    if type_name is None:
        return SaveResult(None, False, errors=[FieldError("INVALID_FIELD", "No SObject Type defined in "
                                                          "attributes", [])])
    target = org.schema.get(type_name)
    if target is None or (obj is not None and target.name != obj.name):
        return SaveResult(None, False, errors=[FieldError("INVALID_TYPE", f"Invalid type: {type_name}", [])])
    if mode == "upsert" and ext_field and ext_field.lower() != "id" and any(k.lower() == "id" for k in record):
        return SaveResult(None, False, errors=[FieldError("INVALID_FIELD", "Id not allowed in upsert with an "
                                                          "external id field", ["Id"])])
    try:
        values, refs = split_record(record)
    except FieldError as err:
        return SaveResult(None, False, errors=[err])
    ext_value = None
    if mode == "upsert":
        key = next((k for k in values if k.lower() == (ext_field or "").lower()), None)
        ext_value = values.pop(key) if key else None
    return org.dml.save(txn, target, values, refs, mode, ext_field, ext_value)


def query(org: Org, req: Request, version: str, parts: list[str]) -> Response:
    """`/query?q=…`, `/queryAll?q=…` and `/query/{cursor}` (the `nextRecordsUrl`)."""
    if parts:
        with org.cursor_lock:
            entry = org.cursors.pop(parts[0].split("-")[0], None)
        if entry is None:
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        rows, total = entry
    else:
        text = req.query.get("q", "")
        psa = access_mod.query(org.access, org.view_setup, text, USER_ID, version)  # DOCTOR hook
        if psa is not None:
            return psa
        try:
            q = parse(org.schema, text)
            total, rows = query_mod.run(org.store, q, version, org.mode.sharing.visible)
        except SoqlError as exc:
            return error(400, exc.code, exc.message)
    size = org.page_size
    options = req.header("sforce-query-options")
    if "batchsize=" in options.lower():
        try:
            size = min(max(int(options.lower().split("batchsize=")[1].split(",")[0]), 200), 2000)
        except ValueError:
            pass
    page, remaining = rows[:size], rows[size:]
    out: dict[str, Any] = {"totalSize": total, "done": not remaining, "records": page}
    if remaining:
        cid = org.new_cursor(remaining, total)
        served = total - len(remaining)
        out["nextRecordsUrl"] = f"/services/data/v{version}/query/{cid}-{served}"
    return json_response(200, out)
