"""What Salesforce should hold, computed from Stripe's final state with the pipeline's own mappings.

Input: the truth (the simulator's `/_sim/truth` lines, or the same shape built from Stripe's list
endpoints): `{"kind":"object","type":T,"account":A,"object":{…}}` for every object and
`{"kind":"payout","id":…,"automatic":…,"reconciliation_status":…,"members":[{"id","type","net"}] | null,…}`
for every payout (members null for a manual payout: Stripe cannot list them) and
`{"kind":"deleted","type":T,"account":A,"id":…}` for an object Stripe deleted (a draft invoice). Output: expected
records keyed by (sobject, external id), fields merged in the pipeline's field-ownership order,
parents as `Relationship__r.Ext_Field__c` keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from core import registry
from core.common import EventMeta
from core.config import MappingConfig
from core.mapping import map_object
from core.order import encode_version, version_of
from core.payout_reconciliation import PayoutMember, reconcile_payout
from core.types.balance_transaction import map_balance_transaction
from core.types.invoice import map_deleted_invoice
from producers.balance_records import balance_record

Key = tuple[str, str]


def _merge(into: dict[Key, dict[str, Any]], upserts: Iterable[dict[str, Any]], sources: dict[Key, str] | None = None,
           origin: str | None = None) -> None:
    for up in upserts:
        key = (up["sobject"], up["external_id"])
        record = into.setdefault(key, {})
        record.update(up["fields"])
        for ref in up["parents"]:
            record[f"{ref['relationship']}.{ref['external_id_field']}"] = ref["external_id"]
        if sources is not None and origin is not None:
            sources.setdefault(key, origin)


def _meta(object_type: str, obj: dict[str, Any], account: str | None) -> EventMeta:
    created = int(obj.get("created") or 0)
    return EventMeta(event_id=None, event_type=None, created=created, account=account or None,
                     livemode=bool(obj.get("livemode", False)),
                     version=encode_version(version_of(object_type, obj, created, None)))


def _bt_record(txn: dict[str, Any], account: str | None, payout_id: str | None, count: int | None) -> dict[str, Any]:
    """The `paysync.StripeBalanceTransaction` record the pollers would publish for `txn` (the same builder)."""
    _, record = balance_record(txn, json.dumps(txn, separators=(",", ":"), default=str), source="backfill",
                               account=account or None, api_version="", received_at_ms=int(time.time() * 1000),
                               payout_id=payout_id, payout_transaction_count=count)
    return record


def _reconciliation(po: dict[str, Any], payout_obj: dict[str, Any], account: str | None,
                    bts: dict[str, tuple[dict[str, Any], str | None]], cfg: MappingConfig) -> dict[str, Any]:
    """The payout's reconciliation upsert from its truth line (members None: a manual payout, Stripe lists none)."""
    members = []
    for m in po.get("members") or []:
        txn = bts.get(m["id"], ({}, None))[0]
        members.append(PayoutMember(balance_transaction_id=m["id"], amount=int(txn.get("amount", m["net"])),
                                    fee=int(txn.get("fee", 0)), net=int(m["net"]),
                                    currency=str(txn.get("currency", po.get("currency")))))
    meta = _meta("payout", payout_obj or {"created": 0}, account)
    count = len(members) if po.get("members") is not None else None
    return reconcile_payout(po["id"], po.get("amount"), po.get("currency"), members, count, meta, cfg,
                            automatic=po.get("automatic"), reconciliation_status=po.get("reconciliation_status"))


def expected_records(truth: Iterable[dict[str, Any]], cfg: MappingConfig,
                     since: int | None = None, until: int | None = None) -> tuple[dict[Key, dict[str, Any]], dict[str, Any]]:
    """(expected records, context) from truth lines; `since`/`until` (unix s) bound objects by `created`.

    The context carries the Stripe objects by type and the payouts, for the report's totals and for repair.
    """
    objects: dict[str, dict[str, tuple[dict[str, Any], str | None]]] = {}
    payouts: list[dict[str, Any]] = []
    deleted: list[dict[str, Any]] = []
    for line in truth:
        if line.get("kind") == "object":
            obj = line["object"]
            objects.setdefault(line["type"], {})[obj["id"]] = (obj, line.get("account") or None)
        elif line.get("kind") == "payout":
            payouts.append(line)
        elif line.get("kind") == "deleted":
            deleted.append(line)

    def in_range(obj: dict[str, Any]) -> bool:
        created = int(obj.get("created") or 0)
        return (since is None or created >= since) and (until is None or created < until)

    expected: dict[Key, dict[str, Any]] = {}
    upserts_by_key: dict[Key, list[dict[str, Any]]] = {}

    def add(ups: list[dict[str, Any]]) -> None:
        _merge(expected, ups)
        for up in ups:
            upserts_by_key.setdefault((up["sobject"], up["external_id"]), []).append(up)

    # Object snapshots first, then balance transactions, then reconciliations: the ownership order.
    for spec in registry.event_types():
        for obj, account in objects.get(spec.name, {}).values():
            if in_range(obj):
                add(map_object(spec.name, obj, _meta(spec.name, obj, account), cfg))
    deleted_keys: set[Key] = set()
    for line in deleted:  # a deleted draft stays in Salesforce with status Deleted (paysync never deletes)
        if line.get("type") == "invoice":
            stub = {"id": line["id"], "object": "invoice", "deleted": True}
            ups = map_deleted_invoice(stub, _meta("invoice", stub, line.get("account")), cfg)
            add(ups)
            deleted_keys.update((up["sobject"], up["external_id"]) for up in ups)
    membership: dict[str, tuple[str, int]] = {}
    for po in payouts:
        for member in po.get("members") or []:
            membership[member["id"]] = (po["id"], len(po["members"]))
    for txn, account in objects.get("balance_transaction", {}).values():
        if not in_range(txn):
            continue
        payout_id, count = membership.get(txn["id"], (None, None))
        add(map_balance_transaction(_bt_record(txn, account, payout_id, count), cfg))
    for po in payouts:
        payout_obj, account = objects.get("payout", {}).get(po["id"], ({}, po.get("account")))
        if not payout_obj or in_range(payout_obj):
            add([_reconciliation(po, payout_obj, account, objects.get("balance_transaction", {}), cfg)])
    context = {"objects": objects, "payouts": payouts, "upserts": upserts_by_key, "deleted": deleted_keys}
    return expected, context
