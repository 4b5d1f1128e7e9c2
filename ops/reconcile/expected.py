"""What Salesforce should hold, computed from Stripe's final state with the pipeline's own mappings.

Input: the truth (the simulator's `/_sim/truth` lines, or the same shape built from Stripe's list
endpoints): `{"kind":"object","type":T,"account":A,"object":{…}}` for every object and
`{"kind":"payout","id":…,"members":[{"id","type","net"}],…}` for every payout. Output: expected
records keyed by (sobject, external id), fields merged in the pipeline's field-ownership order,
parents as `Relationship__r.Ext_Field__c` keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from streams.mapping import EventMeta, MappingConfig, PayoutMember, map_balance_transaction, map_object, reconcile_payout
from streams.mapping import SUPPORTED_OBJECT_TYPES
from streams.order import encode_version, version_of

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
    source = txn.get("source")
    source_id = source.get("id") if isinstance(source, dict) else source
    rate = txn.get("exchange_rate")
    return {
        "id": txn["id"], "source_id": source_id, "payout_id": payout_id, "payout_transaction_count": count,
        "account": account or None, "livemode": bool(txn.get("livemode", False)), "type": txn["type"],
        "reporting_category": txn.get("reporting_category"), "amount": txn["amount"], "fee": txn["fee"],
        "net": txn["net"], "currency": txn["currency"],
        "exchange_rate": None if rate is None else (rate if isinstance(rate, str) else repr(rate)),
        "available_on": txn.get("available_on", 0), "created": txn.get("created", 0), "status": txn.get("status", ""),
        "source": "backfill", "api_version": None, "received_at": int(time.time() * 1000),
        "raw": json.dumps(txn, separators=(",", ":")),
    }


def expected_records(truth: Iterable[dict[str, Any]], cfg: MappingConfig,
                     since: int | None = None, until: int | None = None) -> tuple[dict[Key, dict[str, Any]], dict[str, Any]]:
    """(expected records, context) from truth lines; `since`/`until` (unix s) bound objects by `created`.

    The context carries the Stripe objects by type and the payouts, for the report's totals and for repair.
    """
    objects: dict[str, dict[str, tuple[dict[str, Any], str | None]]] = {}
    payouts: list[dict[str, Any]] = []
    for line in truth:
        if line.get("kind") == "object":
            obj = line["object"]
            objects.setdefault(line["type"], {})[obj["id"]] = (obj, line.get("account") or None)
        elif line.get("kind") == "payout":
            payouts.append(line)

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
    for object_type in ("customer", "payout", "invoice", "payment_intent", "charge", "refund", "dispute"):
        if object_type not in SUPPORTED_OBJECT_TYPES:
            continue
        for obj, account in objects.get(object_type, {}).values():
            if in_range(obj):
                add(map_object(object_type, obj, _meta(object_type, obj, account), cfg))
    membership: dict[str, tuple[str, int]] = {}
    for po in payouts:
        for member in po["members"]:
            membership[member["id"]] = (po["id"], len(po["members"]))
    for txn, account in objects.get("balance_transaction", {}).values():
        if not in_range(txn):
            continue
        payout_id, count = membership.get(txn["id"], (None, None))
        add(map_balance_transaction(_bt_record(txn, account, payout_id, count), cfg))
    bts = objects.get("balance_transaction", {})
    for po in payouts:
        payout_obj, account = objects.get("payout", {}).get(po["id"], ({}, po.get("account")))
        if payout_obj and not in_range(payout_obj):
            continue
        members = []
        for m in po["members"]:
            txn = bts.get(m["id"], ({}, None))[0]
            members.append(PayoutMember(balance_transaction_id=m["id"], amount=int(txn.get("amount", m["net"])),
                                        fee=int(txn.get("fee", 0)), net=int(m["net"]),
                                        currency=str(txn.get("currency", po.get("currency")))))
        meta = _meta("payout", payout_obj or {"created": 0}, account)
        add([reconcile_payout(po["id"], po.get("amount"), po.get("currency"), members, len(members), meta, cfg)])
    context = {"objects": objects, "payouts": payouts, "upserts": upserts_by_key}
    return expected, context
