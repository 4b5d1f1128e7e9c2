"""`POST /composite`: up to 25 subrequests in one API call, as Salesforce runs them: with `collateSubrequests`
(default true from API 49.0) unrelated subrequests run in a seeded shuffled order, each after the subrequests it
refers to by `@{ref}`; with `collateSubrequests: false`, in request order.

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


Sub = tuple[str, str, str, dict[str, str], dict[str, Any]]  # referenceId, method, url, headers, raw subrequest


def _parse(subs: list[Any]) -> list[Sub] | Response:
    """The subrequests, checked (referenceId, method, url, resource, heavy count), or the 400 to answer."""
    parsed: list[Sub] = []
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
    return parsed


def _dependencies(parsed: list[Sub]) -> list[set[str]]:
    """For each subrequest, the earlier referenceIds its url or body refers to (`@{ref.…}`)."""
    out: list[set[str]] = []
    earlier: set[str] = set()
    for ref, _, url, _, sub in parsed:
        text = url + (json.dumps(sub["body"], default=str) if "body" in sub else "")
        out.append({name for name, _ in _REFERENCE.findall(text)} & earlier)
        earlier.add(ref)
    return out


def execution_order(parsed: list[Sub], collate: bool, shuffle: Callable[[list[int]], list[int]]) -> list[int]:
    """Indices in the order to run. "Composite Request Body", collateSubrequests: "When subrequests are collated,
    the processing speed is faster, but the order of execution is not guaranteed (unless there is an explicit
    dependency between the subrequests). If collation is disabled, then the subrequests are executed in the order
    in which they are received. Subrequests that contain valid HTTP headers are not collated." Collated: a seeded
    shuffle, each subrequest after those it refers to; a subrequest with httpHeaders stays in its place (those
    before it run before it, those after it after it)."""
    if not collate:
        return list(range(len(parsed)))
    deps = _dependencies(parsed)
    index = {ref: i for i, (ref, *_) in enumerate(parsed)}
    order: list[int] = []
    segment: list[int] = []
    for i, item in enumerate(parsed):
        if item[3]:  # httpHeaders: not collated
            order += _shuffled_segment(segment, deps, index, set(order), shuffle) + [i]
            segment = []
        else:
            segment.append(i)
    return order + _shuffled_segment(segment, deps, index, set(order), shuffle)


def _shuffled_segment(segment: list[int], deps: list[set[str]], index: dict[str, int], done: set[int],
                      shuffle: Callable[[list[int]], list[int]]) -> list[int]:
    pending, order = shuffle(segment), []
    while pending:
        ready = next(i for i in pending if all(index[d] in done for d in deps[i]))
        pending.remove(ready)
        done.add(ready)
        order.append(ready)
    return order


def _collate(body: dict[str, Any], version: str) -> bool:
    """collateSubrequests: "In API version 49.0 and later, the default value is true. In version 48.0, the default
    value is false." ("Composite Request Body")."""
    value = body.get("collateSubrequests")
    return bool(value) if value is not None else float(version) >= 49.0


def _run_one(item: Sub, done: dict[str, tuple[int, Any]], route: Route) -> dict[str, Any]:
    ref, method, url, headers, sub = item
    try:
        url = _resolve(url, done)
        raw = dumps(sub["body"]).decode("utf-8") if "body" in sub else ""
        raw = _resolve(raw, done) if raw else raw
    except _Halted:
        done[ref] = (400, None)
        return _halted(ref)
    split = urlsplit(url)
    m = _URL.match(split.path)
    assert m is not None  # checked by _parse; references only touch ids and values
    query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    sub_req = Request(method, split.path, query, headers, raw.encode("utf-8"))
    resp = route(sub_req, m.group(1), [p for p in m.group(2).split("/") if p])
    try:
        result: Any = json.loads(resp.body, parse_float=Decimal) if resp.body else None
    except ValueError:
        result = resp.body.decode("utf-8", "replace")
    done[ref] = (resp.status, result)
    sub_headers = {k: v for k, v in resp.headers.items() if k.lower() == "location"}
    return {"body": result, "httpHeaders": sub_headers, "httpStatusCode": resp.status, "referenceId": ref}


def composite(req: Request, version: str, route: Route,
              shuffle: Callable[[list[int]], list[int]] = lambda xs: xs) -> Response:
    """Run a composite request through `route(sub_request, version, parts)` (the router, uncounted); `shuffle`
    orders collated subrequests (seeded). Responses come back in request order."""
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
    parsed = _parse(subs)
    if isinstance(parsed, Response):
        return parsed
    done: dict[str, tuple[int, Any]] = {}
    answers: dict[int, dict[str, Any]] = {}
    for i in execution_order(parsed, _collate(body, version), shuffle):
        answers[i] = _run_one(parsed[i], done, route)
    return json_response(200, {"compositeResponse": [answers[i] for i in range(len(parsed))]})
