"""Request/response values passed between the HTTP server and the handlers, and Salesforce's JSON shapes.

`dumps` renders `Decimal`s as exact JSON numbers (10.50 → `10.5`, never through a float).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from emulators.salesforce_emulator.values import render_number

_MARK = "\u0000dec:" + uuid.uuid4().hex[:8] + ":"
_MARK_RE = re.compile(re.escape(json.dumps(_MARK)[:-1]) + r'([-0-9.]+)"')


def _mark(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return _MARK + render_number(obj)
    if isinstance(obj, dict):
        return {k: _mark(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_mark(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """JSON with exact decimals."""
    return _MARK_RE.sub(r"\1", json.dumps(_mark(obj), ensure_ascii=False)).encode("utf-8")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    host: str = "mydomain"  # which base URL it came in on: "login" (login.salesforce.com) or "mydomain"

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON (numbers that are not integers parse as Decimal); ValueError if malformed."""
        return json.loads(self.body.decode("utf-8") or "null", parse_float=Decimal)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dumps(obj), {"Content-Type": "application/json;charset=UTF-8", **(headers or {})})


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    """Salesforce's top-level REST error: a JSON array of `{message, errorCode[, fields]}`."""
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return json_response(status, [item])


def csv_response(text: str) -> Response:
    return Response(200, text.encode("utf-8"), {"Content-Type": "text/csv"})
