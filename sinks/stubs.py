"""Stub parents: a child whose parent stays missing gets a minimal insert-only parent (never overwriting a real one).

`stubs_for(children)` builds the stub records (or names the children that cannot be stubbed: a parent addressed
by Salesforce id); `insert_stubs(client, stubs)` creates them with Collections create, parents first.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from paysync.outcomes import Outcome
from sinks.client import CallError, SalesforceClient
from sinks.errors import classify_record, error_fields
from sinks.payload import stub_record
from sinks.records import PendingRecord, object_rank

log = logging.getLogger(__name__)


def stubs_for(children: list[PendingRecord]) -> tuple[list[dict[str, Any]], list[PendingRecord]]:
    """(stub records for every parent of `children`, the children that cannot be stubbed); marks them tried."""
    stubs: dict[str, dict[str, Any]] = {}
    unstubbable: list[PendingRecord] = []
    for child in children:
        child.stub_tried = True
        ok = True
        for p in child.parents.values():
            stub = stub_record(p.sobject, p.external_id_field, p.external_id)
            if stub is None:
                ok = False
            else:
                stubs[p.key] = stub
        if not ok:
            unstubbable.append(child)
    return list(stubs.values()), unstubbable


def insert_stubs(client: SalesforceClient, stubs: list[dict[str, Any]]) -> str | None:
    """Create stub parents (insert only; DUPLICATE_VALUE = it exists now). None, or the transient code."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in stubs:
        by_type[s["attributes"]["type"]].append(s)
    for sobject, rows in sorted(by_type.items(), key=lambda kv: object_rank(kv[0])):
        for i in range(0, len(rows), 200):
            try:
                results = client.create_collection({"allOrNone": False, "records": rows[i:i + 200]})
            except CallError as exc:
                if exc.decision.outcome is Outcome.DEAD_LETTER:
                    continue  # the child's own retry will report the problem
                return exc.decision.code
            for row, res in zip(rows[i:i + 200], results):
                if res.get("success"):
                    log.info("stub parent inserted", extra={"sobject": sobject, "external_id": _ext(row)})
                    continue
                code, message = error_fields(res)
                if code in ("DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID"):
                    continue  # the real parent exists now
                if classify_record(code or "", message).outcome is Outcome.RETRY:
                    return code
    return None


def _ext(row: dict[str, Any]) -> str:
    return next((str(v) for k, v in row.items() if k != "attributes"), "")
