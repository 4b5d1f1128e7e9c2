"""`POST /composite`: up to 25 subrequests executed in order in one API call, as Salesforce does.

Subrequests may address the sObject resources (incl. upsert by external id), query/queryAll and sObject
Collections; at most 5 of them may be Collections or query calls. Each answers
`{"body", "httpHeaders", "httpStatusCode", "referenceId"}` in request order. `@{ref.path}` references to an
earlier subrequest's body are resolved (`@{refAccount.id}`, `@{q.records[0].Id}`); a subrequest that refers
to a failed or unknown one answers 400 `PROCESSING_HALTED`. With `allOrNone: false` (the default) the
others still run. `allOrNone: true` (roll everything back on the first error) is not emulated and is
refused with a clear 400 rather than half-honoured.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulators.salesforce_emulator.wire import Request, Response, dumps, error, json_response

MAX_SUBREQUESTS = 25
MAX_HEAVY = 5  # Collections and query subrequests
_REF_ID = re.compile(r"^[A-Za-z0-9_]{1,80}$")
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")
_URL = re.compile(r"^/services/data/v(\d+\.\d)/(.+)$")
_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Route = Callable[[Request, str, list[str]], Response]


class _Halted(Exception):
    """A reference to a subrequest that failed or does not exist."""


def _heavy(parts: list[str]) -> bool:
    return (parts[:2] == ["composite", "sobjects"]) or parts[:1] in (["query"], ["queryAll"])


def _lookup(body: Any, path: str) -> Any:
    value = body
    for name, index in _PATH_STEP.findall(path):
        if name:
            if not isinstance(value, dict) or name not in value:
                raise _Halted(path)
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise _Halted(path)
            value = value[int(index)]
    return value


def _resolve(text: str, done: dict[str, tuple[int, Any]]) -> str:
    """Replace `@{ref.path}` in `text` with the value from an earlier successful subrequest."""

    def one(m: re.Match[str]) -> str:
        entry = done.get(m.group(1))
        if entry is None or entry[0] >= 400:
            raise _Halted(m.group(1))
        value = _lookup(entry[1], m.group(2))
        return value if isinstance(value, str) else json.dumps(value)

    return _REFERENCE.sub(one, text)


def _halted(ref: str) -> dict[str, Any]:
    return {"body": [{"errorCode": "PROCESSING_HALTED",
                      "message": f"Invalid reference specified. No value for {ref} found in the previous requests."}],
            "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref}


def composite(req: Request, version: str, route: Route) -> Response:
    """Run a composite request through `route(sub_request, version, parts)` (the router, uncounted)."""
    if req.method == "GET":
        return json_response(200, {"sobjects": f"/services/data/v{version}/composite/sobjects"})
    if req.method != "POST":
        return error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{req.method}' not allowed. Allowed are GET,POST")
    try:
        body = req.json()
    except ValueError as exc:
        return error(400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}")
    subs = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(subs, list) or not subs:
        return error(400, "INVALID_INPUT", "compositeRequest: required and must be a non-empty list")
    if body.get("allOrNone"):
        return error(400, "INVALID_INPUT", "allOrNone=true on /composite is not supported by the emulator")
    if len(subs) > MAX_SUBREQUESTS:
        return error(400, "LIMIT_EXCEEDED", f"Composite requests allow at most {MAX_SUBREQUESTS} subrequests")
    parsed: list[tuple[str, str, list[str], dict[str, str], dict[str, Any]]] = []
    seen: set[str] = set()
    heavy = 0
    for sub in subs:
        if not isinstance(sub, dict):
            return error(400, "INVALID_INPUT", "each subrequest must be an object")
        ref, method, url = sub.get("referenceId"), str(sub.get("method") or "").upper(), str(sub.get("url") or "")
        if not isinstance(ref, str) or not _REF_ID.match(ref):
            return error(400, "INVALID_INPUT", f"referenceId must be alphanumeric (underscores allowed): {ref!r}")
        if ref in seen:
            return error(400, "INVALID_INPUT", f"Duplicate referenceId provided in the request: {ref}")
        seen.add(ref)
        if method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            return error(400, "INVALID_INPUT", f"{ref}: unsupported method {method!r}")
        split = urlsplit(url)
        m = _URL.match(split.path)
        if not m:
            return error(400, "INVALID_INPUT", f"{ref}: url must start with /services/data/vXX.X/")
        parts = [p for p in m.group(2).split("/") if p]
        if parts[:1] not in (["sobjects"], ["query"], ["queryAll"]) and parts[:2] != ["composite", "sobjects"]:
            return error(400, "INVALID_INPUT", f"{ref}: {split.path} is not supported in a composite request")
        heavy += _heavy(parts)
        headers = {str(k).lower(): str(v) for k, v in (sub.get("httpHeaders") or {}).items()}
        parsed.append((ref, method, url, headers, sub))
    if heavy > MAX_HEAVY:
        return error(400, "LIMIT_EXCEEDED", f"Composite requests allow at most {MAX_HEAVY} sObject Collections "
                                            "or query subrequests")
    done: dict[str, tuple[int, Any]] = {}
    out: list[dict[str, Any]] = []
    for ref, method, url, headers, sub in parsed:
        try:
            url = _resolve(url, done)
            raw = dumps(sub["body"]).decode("utf-8") if "body" in sub else ""
            raw = _resolve(raw, done) if raw else raw
        except _Halted:
            out.append(_halted(ref))
            done[ref] = (400, None)
            continue
        split = urlsplit(url)
        m = _URL.match(split.path)
        assert m is not None  # checked above; references only touch ids and values
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        sub_req = Request(method, split.path, query, headers, raw.encode("utf-8"))
        resp = route(sub_req, m.group(1), [p for p in m.group(2).split("/") if p])
        try:
            result: Any = json.loads(resp.body, parse_float=Decimal) if resp.body else None
        except ValueError:
            result = resp.body.decode("utf-8", "replace")
        done[ref] = (resp.status, result)
        sub_headers = {k: v for k, v in resp.headers.items() if k.lower() == "location"}
        out.append({"body": result, "httpHeaders": sub_headers, "httpStatusCode": resp.status, "referenceId": ref})
    return json_response(200, {"compositeResponse": out})
