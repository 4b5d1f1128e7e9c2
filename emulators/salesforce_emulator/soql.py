"""A SOQL subset, parsed and evaluated against the store.

Supported: `SELECT f, Rel__r.f | COUNT() FROM Obj [WHERE …] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …]
[LIMIT n] [OFFSET n]`; WHERE with `= != <> < > <= >= LIKE IN NOT IN`, `AND OR NOT`, parentheses, and literals:
'strings', numbers, true/false, null, date (2026-01-02) and datetime (2026-01-02T03:04:05Z) literals.
String comparisons are case-insensitive except on case-sensitive fields. Errors raise `SoqlError` with the
Salesforce error code (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from emulators.salesforce_emulator.metadata import FieldDef, ObjectDef, Schema
from emulators.salesforce_emulator.values import format_datetime, parse_datetime

_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
)""", re.VERBOSE)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Cond:
    """A comparison (`op`, `path`, `value`) or a boolean node (`op` AND/OR/NOT with `children`)."""

    op: str
    path: tuple[FieldDef, ...] = ()
    value: Any = None
    children: list["Cond"] = field(default_factory=list)


@dataclass
class Query:
    obj: ObjectDef
    count: bool
    columns: list[tuple[str, tuple[FieldDef, ...]]]
    where: Cond | None
    order: list[tuple[tuple[FieldDef, ...], bool, bool]]
    limit: int | None
    offset: int


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text[pos:pos + 20].strip()}'")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, schema: Schema, text: str) -> None:
        self.schema, self.toks, self.i = schema, _tokens(text), 0
        self.obj: ObjectDef | None = None

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def kw(self, word: str) -> bool:
        kind, val = self.peek()
        if kind == "word" and val.upper() == word:
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        kind, val = self.peek()
        if val.upper() != value:
            raise SoqlError("MALFORMED_QUERY", f"expecting '{value}', found '{val or 'end of query'}'")
        self.i += 1

    def parse(self) -> Query:
        self.expect("SELECT")
        raw_cols: list[str] = []
        count = False
        if self.peek()[1].upper() == "COUNT" and self.peek(1)[1] == "(":
            self.i += 2
            self.expect(")")
            count = True
        else:
            while True:
                kind, val = self.peek()
                if kind != "word":
                    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{val}'")
                raw_cols.append(val)
                self.i += 1
                if self.peek()[1] != ",":
                    break
                self.i += 1
        self.expect("FROM")
        kind, name = self.peek()
        self.i += 1
        obj = self.schema.get(name) if kind == "word" else None
        if obj is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
        if obj.platform_event:
            # "No SOQL Support: You can't query event messages using SOQL." ("Considerations for Defining and
            # Publishing Platform Events"); the answer is the one for an unqueryable type (code as above).
            raise SoqlError("INVALID_TYPE", f"sObject type '{obj.name}' is not supported.")
        self.obj = obj
        columns = [(c, self.path(c)) for c in raw_cols]
        where = self.condition() if self.kw("WHERE") else None
        order: list[tuple[tuple[FieldDef, ...], bool, bool]] = []
        if self.kw("ORDER"):
            self.expect("BY")
            while True:
                path = self.path(self.peek()[1])
                self.i += 1
                desc = self.kw("DESC") or (not self.kw("ASC") and False)
                nulls_last = desc
                if self.kw("NULLS"):
                    nulls_last = self.kw("LAST") or (not self.kw("FIRST") and nulls_last)
                order.append((path, desc, nulls_last))
                if self.peek()[1] != ",":
                    break
                self.i += 1
        limit = self.integer() if self.kw("LIMIT") else None
        offset = self.integer() if self.kw("OFFSET") else 0
        if self.peek()[0] != "end":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.peek()[1]}'")
        return Query(obj, count, columns, where, order, limit, offset)

    def integer(self) -> int:
        kind, val = self.peek()
        if kind != "num" or "." in val or val.startswith("-"):
            raise SoqlError("MALFORMED_QUERY", f"expecting a non-negative integer, found '{val}'")
        self.i += 1
        return int(val)

    def path(self, text: str) -> tuple[FieldDef, ...]:
        assert self.obj is not None
        parts, obj, out = text.split("."), self.obj, []
        for rel in parts[:-1]:
            lookup = obj.relationship(rel)
            if lookup is None:
                raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{rel}' in field path. "
                                f"No such column '{rel}' on entity '{obj.name}'.")
            out.append(lookup)
            obj = self.schema.objects[lookup.reference_to]
        f = obj.field(parts[-1])
        if f is None:
            raise SoqlError("INVALID_FIELD", f"No such column '{parts[-1]}' on entity '{obj.name}'.")
        out.append(f)
        return tuple(out)

    def condition(self) -> Cond:
        node = self.conjunction()
        while self.kw("OR"):
            node = Cond("OR", children=[node, self.conjunction()])
        return node

    def conjunction(self) -> Cond:
        node = self.negation()
        while self.kw("AND"):
            node = Cond("AND", children=[node, self.negation()])
        return node

    def negation(self) -> Cond:
        if self.kw("NOT"):
            return Cond("NOT", children=[self.negation()])
        if self.peek()[1] == "(":
            self.i += 1
            node = self.condition()
            self.expect(")")
            return node
        kind, val = self.peek()
        if kind != "word":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{val}'")
        self.i += 1
        path = self.path(val)
        if self.kw("NOT"):
            self.expect("IN")
            return Cond("NOT IN", path, self.value_list())
        if self.kw("IN"):
            return Cond("IN", path, self.value_list())
        if self.kw("LIKE"):
            pattern = self.literal()
            if not isinstance(pattern, str):
                raise SoqlError("MALFORMED_QUERY", "LIKE needs a string")
            regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
            return Cond("LIKE", path, re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL))
        op_kind, op = self.peek()
        if op_kind != "op" or op in ("(", ")", ","):
            raise SoqlError("MALFORMED_QUERY", f"expecting an operator, found '{op}'")
        self.i += 1
        return Cond("!=" if op == "<>" else op, path, self.literal())

    def value_list(self) -> list[Any]:
        self.expect("(")
        values = [self.literal()]
        while self.peek()[1] == ",":
            self.i += 1
            values.append(self.literal())
        self.expect(")")
        return values

    def literal(self) -> Any:
        kind, val = self.peek()
        self.i += 1
        if kind == "str":
            return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), val[1:-1])
        if kind == "num":
            return Decimal(val)
        if kind == "dt":
            return format_datetime(parse_datetime(val))  # type: ignore[arg-type]
        if kind == "date":
            return val
        if kind == "word" and val.lower() in ("true", "false"):
            return val.lower() == "true"
        if kind == "word" and val.lower() == "null":
            return None
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{val}'")


def parse(schema: Schema, text: str) -> Query:
    """Parse `text`; raises `SoqlError`."""
    return _Parser(schema, text).parse()
