"""Running a parsed SOQL `Query` against the store: filter, sort, offset/limit, project (parents nested)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import cmp_to_key
from typing import Any

from emulators.salesforce_emulator.metadata import FieldDef
from emulators.salesforce_emulator.soql import Cond, Query, SoqlError
from emulators.salesforce_emulator.store import Store


def _resolve(store: Store, rec: dict[str, Any] | None, path: tuple[FieldDef, ...]) -> Any:
    for lookup in path[:-1]:
        if rec is None:
            return None
        pid = rec.get(lookup.name)
        rec = store.records[lookup.reference_to].get(pid) if pid else None
    return None if rec is None else rec.get(path[-1].name)


def _norm(f: FieldDef, value: Any, literal: Any) -> tuple[Any, Any]:
    """Comparable forms of a field value and a literal (case folding, numbers, ids)."""
    if isinstance(value, Decimal) or f.type == "Number":
        try:
            return value, Decimal(str(literal)) if not isinstance(literal, Decimal) else literal
        except ArithmeticError:
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{f.name}' must be of type "
                            f"double and should not be enclosed in quotes") from None
    if f.type == "Checkbox":
        if not isinstance(literal, bool):
            raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{f.name}' must be of type "
                            f"boolean and should not be enclosed in quotes")
        return value, literal
    if f.type in ("Id", "Lookup") and isinstance(literal, str) and len(literal) == 15:
        return value, Store.normalize_id(literal)
    if isinstance(value, str) and isinstance(literal, str) and not f.case_sensitive:
        return value.lower(), literal.lower()
    return value, literal


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "=":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        return bool({"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op])
    except TypeError:
        raise SoqlError("MALFORMED_QUERY", "incompatible types in comparison") from None


def matches(store: Store, rec: dict[str, Any], cond: Cond) -> bool:
    if cond.op == "AND":
        return all(matches(store, rec, c) for c in cond.children)
    if cond.op == "OR":
        return any(matches(store, rec, c) for c in cond.children)
    if cond.op == "NOT":
        return not matches(store, rec, cond.children[0])
    f = cond.path[-1]
    value = _resolve(store, rec, cond.path)
    if cond.op == "LIKE":
        return value is not None and bool(cond.value.match(str(value)))
    if cond.op in ("IN", "NOT IN"):
        hit = any(_compare("=", *_norm(f, value, lit)) for lit in cond.value)
        return hit if cond.op == "IN" else not hit
    if cond.value is None:
        return (value is None) == (cond.op == "=")
    return _compare(cond.op, *_norm(f, value, cond.value))


def _sort(store: Store, rows: list[dict[str, Any]], order: list[tuple[tuple[FieldDef, ...], bool, bool]]) -> None:
    def cmp(x: dict[str, Any], y: dict[str, Any]) -> int:
        for path, desc, nulls_last in order:
            a, b = _resolve(store, x, path), _resolve(store, y, path)
            if isinstance(a, str) and isinstance(b, str):
                a, b = a.lower(), b.lower()
            if a == b:
                continue
            if a is None or b is None:
                return (1 if nulls_last else -1) * (1 if a is None else -1)
            result = -1 if a < b else 1
            return -result if desc else result
        return 0

    rows.sort(key=cmp_to_key(cmp))


def _project(store: Store, q: Query, rec: dict[str, Any], version: str) -> dict[str, Any]:
    def attrs(name: str, rid: str) -> dict[str, str]:
        return {"type": name, "url": f"/services/data/v{version}/sobjects/{name}/{rid}"}

    out: dict[str, Any] = {"attributes": attrs(q.obj.name, rec["Id"])}
    for _, path in q.columns:
        target: dict[str, Any] = out
        cur: dict[str, Any] | None = rec
        for lookup in path[:-1]:
            pid = cur.get(lookup.name) if cur else None
            cur = store.records[lookup.reference_to].get(pid) if pid else None
            key = lookup.relationship
            if cur is None:
                target.setdefault(key, None)
                target = {}
                break
            if not isinstance(target.get(key), dict):
                target[key] = {"attributes": attrs(lookup.reference_to, cur["Id"])}
            target = target[key]
        else:
            target[path[-1].name] = cur.get(path[-1].name) if cur else None
    return out


def _indexed(cond: Cond) -> tuple[FieldDef, list[str]] | None:
    """(field, literals) of the condition of `cond` (itself, or a child of a top-level AND) that an index answers:
    `=`/`IN` of text literals on the object's own Id or a unique field (`Store.find_unique`; external ids are
    unique here)."""
    if cond.op == "AND":
        return next((hit for c in cond.children if (hit := _indexed(c)) is not None), None)
    if cond.op not in ("=", "IN") or len(cond.path) != 1:
        return None
    f = cond.path[0]
    literals = cond.value if cond.op == "IN" else [cond.value]
    if not f.unique or f.type not in ("Id", "Text") or not all(isinstance(v, str) for v in literals):
        return None
    return f, literals


def _check_literals(store: Store, cond: Cond) -> None:
    """SoqlError for a literal of the wrong type anywhere in `cond` (Salesforce refuses the query itself: "value
    of filter criterion for field … must be of type double"), whichever rows are candidates."""
    for child in cond.children:
        _check_literals(store, child)
    if not cond.children:
        matches(store, {}, cond)


def _candidates(store: Store, q: Query) -> list[dict[str, Any]]:
    """The records `q.where` may match: a superset that the full filter then decides.

    Salesforce, "Indexes" (Large Data Volumes best practices): "External IDs cause an index to be created on that
    field. The query optimizer then considers those fields." A filter on such a field (or the record Id) reads
    the index instead of every row; the full condition still decides, so the answer is the same as a scan's."""
    table = store.records[q.obj.name]
    hit = _indexed(q.where) if q.where is not None else None
    if q.where is None or hit is None:
        return list(table.values())
    _check_literals(store, q.where)
    f, literals = hit
    ids = {rid for lit in literals if (rid := store.find_unique(q.obj, f.name, lit)) is not None}
    # in Id (creation) order; "ORDER BY": "There’s no guarantee of the order of results unless you use an
    # ORDER BY clause in a query."
    return [table[rid] for rid in sorted(ids)]


def run(store: Store, q: Query, version: str,
        visible: Callable[[str], bool] | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(totalSize, projected records) — for COUNT() the records list is empty; `visible(id)` False hides a record
    (sharing)."""
    with store.lock:
        rows = [r for r in _candidates(store, q) if (visible is None or visible(r["Id"]))
                and (q.where is None or matches(store, r, q.where))]
        if q.order:
            _sort(store, rows, q.order)
        rows = rows[q.offset:]
        if q.limit is not None:
            rows = rows[: q.limit]
        if q.count:
            return len(rows), []
        return len(rows), [_project(store, q, r, version) for r in rows]
