"""A realistic Stripe stream for the stream-worker tests, built from Stripe's own published example objects.

Customers, charges (some refunded, some disputed), payouts grouping balance transactions whose nets sum
exactly to the payout amount; each balance transaction is listed twice (pending without payout, then
available with its payout and the payout's transaction count). Deterministic for a seed.
Also: `fold` (final Salesforce state from upserts in topic order) and `run_in_process` (the reference).
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paysync.codec import AvroCodec
from paysync.keys import event_key
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS

# Stripe's own example of every resource, captured into the repository (tests/fixtures/stripe/SOURCES.md)
FIXTURES3 = Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "stripe-openapi" / "fixtures3.json"


@dataclass(frozen=True)
class Rec:
    """One input record: which topic (`events` | `bts`), key, and the Avro dict."""

    kind: str
    key: str
    value: dict[str, Any]


def _templates() -> dict[str, dict[str, Any]]:
    return json.loads(FIXTURES3.read_text(encoding="utf-8"))["resources"]


def generate(seed: int = 7, customers: int = 30, charges: int = 150, payouts: int = 5) -> list[Rec]:
    """The stream in Stripe's order (what delivering once, in order, looks like)."""
    rng = random.Random(seed)
    tpl = _templates()
    t0 = 1_760_000_000
    clock = [t0]
    seq = [0]
    out: list[Rec] = []

    def tick(step: int = 1) -> int:
        clock[0] += step
        return clock[0]

    def event(event_type: str, obj: dict[str, Any], created: int) -> None:
        seq[0] += 1
        event_id = f"evt_{seed}_{seq[0]:06d}"
        raw = {"id": event_id, "object": "event", "api_version": "2024-06-20", "created": created,
               "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
               "request": {"id": None, "idempotency_key": None}, "type": event_type}
        out.append(Rec("events", event_key(obj["object"], obj), {
            "event_id": event_id, "event_type": event_type, "created": created, "api_version": "2024-06-20",
            "livemode": False, "account": None, "source": "webhook", "received_at": created * 1000 + 250,
            "object_id": obj["id"], "object_type": obj["object"], "thin": False,
            "raw_event": json.dumps(raw, separators=(",", ":")),
        }))

    def bt(txn: dict[str, Any], key: str, payout_id: str | None, count: int | None, status: str) -> None:
        out.append(Rec("bts", key, {
            "id": txn["id"], "source_id": txn["source"], "payout_id": payout_id,
            "payout_transaction_count": count, "account": None, "livemode": False, "type": txn["type"],
            "reporting_category": txn["reporting_category"], "amount": txn["amount"], "fee": txn["fee"],
            "net": txn["net"], "currency": txn["currency"], "exchange_rate": None,
            "available_on": txn["created"] + 86400, "created": txn["created"], "status": status,
            "source": "poll", "api_version": "2024-06-20", "received_at": clock[0] * 1000 + 500,
            "raw": json.dumps({**txn, "status": status}, separators=(",", ":")),
        }))

    def new_txn(n: int, source: str, txn_type: str, category: str, amount: int, fee: int) -> dict[str, Any]:
        txn = copy.deepcopy(tpl["balance_transaction"])
        txn.update(id=f"txn_{seed}_{n:06d}", source=source, type=txn_type, reporting_category=category,
                   amount=amount, fee=fee, net=amount - fee, currency="usd", created=clock[0], fee_details=[])
        return txn

    cust_ids = []
    for i in range(customers):
        c = copy.deepcopy(tpl["customer"])
        c.update(id=f"cus_{seed}_{i:04d}", created=tick(), name=f"Customer {i}", email=f"c{i}@example.com",
                 phone=None, discount=None)
        cust_ids.append(c["id"])
        event("customer.created", c, c["created"])
        if rng.random() < 0.3:
            c2 = dict(c, name=f"Customer {i} Ltd", phone="+1 555 0100")
            event("customer.updated", c2, tick())
    pending: list[tuple[dict[str, Any], str]] = []  # (txn, key) not yet paid out
    n_txn = 0
    per_payout = max(1, charges // payouts)
    payout_no = 0
    for j in range(charges):
        cust = rng.choice(cust_ids)
        amount = rng.randrange(1_000, 50_000)
        ch = copy.deepcopy(tpl["charge"])
        chid = f"ch_{seed}_{j:05d}"
        ch.update(id=chid, created=tick(), amount=amount, amount_captured=amount, captured=True, customer=cust,
                  status="succeeded", paid=True, payment_intent=None, currency="usd", refunds=None,
                  balance_transaction=None, description=f"Order {j}")
        event("charge.succeeded", ch, ch["created"])
        n_txn += 1
        txn = new_txn(n_txn, chid, "charge", "charge", amount, 30 + amount * 29 // 1000)
        pending.append((txn, chid))
        bt(txn, chid, None, None, "pending")
        ch2 = dict(ch, balance_transaction=txn["id"])
        event("charge.updated", ch2, tick())
        roll = rng.random()
        if roll < 0.1:
            refunded = rng.randrange(100, amount)
            re = copy.deepcopy(tpl["refund"])
            re.update(id=f"re_{seed}_{j:05d}", charge=chid, amount=refunded, created=tick(), status="pending",
                      currency="usd", payment_intent=None)
            event("refund.created", re, re["created"])
            event("charge.refunded", dict(ch2, amount_refunded=refunded), re["created"])
            re2 = dict(re, status="succeeded")
            event("refund.updated", re2, tick())
            n_txn += 1
            rtxn = new_txn(n_txn, re["id"], "refund", "refund", -refunded, 0)
            pending.append((rtxn, chid))
            bt(rtxn, chid, None, None, "pending")
        elif roll < 0.14:
            dp = copy.deepcopy(tpl["dispute"])
            dp.update(id=f"dp_{seed}_{j:05d}", charge=chid, amount=amount, created=tick(),
                      status="needs_response", currency="usd", payment_intent=None, balance_transactions=[])
            event("charge.dispute.created", dp, dp["created"])
            event("charge.dispute.closed", dict(dp, status="lost"), tick())
            n_txn += 1
            dtxn = new_txn(n_txn, dp["id"], "adjustment", "dispute", -amount, 1500)
            pending.append((dtxn, chid))
            bt(dtxn, chid, None, None, "pending")
        if (j + 1) % per_payout == 0 and payout_no < payouts:
            payout_no += 1
            members, pending = pending, []
            total = sum(t["net"] for t, _ in members)
            po = copy.deepcopy(tpl["payout"])
            poid = f"po_{seed}_{payout_no:03d}"
            po.update(id=poid, amount=total, created=tick(), arrival_date=clock[0] + 86400, status="pending",
                      currency="usd", balance_transaction=None, failure_balance_transaction=None)
            event("payout.created", po, po["created"])
            n_txn += 1
            own = new_txn(n_txn, poid, "payout", "payout", -total, 0)
            event("payout.paid", dict(po, status="paid", balance_transaction=own["id"]), tick(3))
            for txn, key in members:
                bt(txn, key, poid, len(members), "available")
            bt(own, poid, poid, len(members), "available")
    return out


def redeliver(records: list[Rec], times: int = 3, seed: int = 11) -> list[Rec]:
    """Every record `times` times (as webhook, poll, backfill), in a random order."""
    sources = ("webhook", "poll", "backfill")
    copies: list[Rec] = []
    for k in range(times):
        for rec in records:
            copies.append(Rec(rec.kind, rec.key, dict(rec.value, source=sources[k % 3],
                                                      received_at=rec.value["received_at"] + k * 1000)))
    random.Random(seed).shuffle(copies)
    return copies


def encode(codec: AvroCodec, rec: Rec) -> bytes:
    """The record as its topic carries it."""
    schema = STRIPE_EVENTS.schema if rec.kind == "events" else STRIPE_BALANCE_TRANSACTIONS.schema
    return codec.encode(schema, rec.value)


def fold(upserts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Final Salesforce state: fields merged per (sobject, external id) in the given order (a versioned status only
    by a newer version, as the sink keeps it), parents by relationship."""
    from sinks.records import STATUS_FIELDS, is_older  # what Salesforce keeps: a versioned status never goes back

    state: dict[tuple[str, str], dict[str, Any]] = {}
    for u in upserts:
        rec = state.setdefault((u["sobject"], u["external_id"]), {"fields": {}, "parents": {}})
        fields = dict(u["fields"])
        spec = STATUS_FIELDS.get(u["sobject"])
        if spec is not None and spec[0] in fields and is_older(u["sobject"], fields.get(spec[1]), rec["fields"].get(spec[1])):
            fields.pop(spec[0], None)
            fields.pop(spec[1], None)
        rec["fields"].update(fields)
        for p in u.get("parents") or []:
            rec["parents"][p["relationship"]] = (p["sobject"], p["external_id_field"], p["external_id"])
    return state


def run_in_process(records: list[Rec], processor: Any) -> list[dict[str, Any]]:
    """The reference: the processor with dict tables, payout messages queued like a topic; returns upserts."""
    from streams.outputs import Origin, Target

    codec = AvroCodec()
    queue: deque[dict[str, Any]] = deque()
    upserts: list[dict[str, Any]] = []
    now = int(time.time() * 1000)

    def take(step: Any) -> None:
        for out in step.outputs:
            if out.target is Target.UPSERT:
                upserts.append(out.value)
            elif out.target is Target.PAYOUT:
                queue.append(out.value)
        processor.apply(step)

    for offset, rec in enumerate(records):
        data = encode(codec, rec)
        origin = Origin(rec.kind, 0, offset)
        if rec.kind == "events":
            take(processor.on_event(rec.key.encode(), data, origin, now))
        else:
            take(processor.on_balance_transaction(rec.key.encode(), data, origin, now))
        while queue:
            take(processor.on_payout_message(queue.popleft(), now))
    return upserts


def expected_state(records: list[Rec], payouts: int) -> dict[tuple[str, str], dict[str, Any]]:
    """The final Salesforce state of delivering `records` once, in order (the processor with in-memory tables);
    checks the stream's `payouts` payouts all come out Reconciled."""
    from prometheus_client import CollectorRegistry

    from streams.metrics import StreamMetrics
    from streams.ports import RealMapper
    from streams.processor import Processor, Tables
    from streams.settings import StreamSettings

    proc = Processor(RealMapper(StreamSettings().mapping), AvroCodec(), StreamMetrics(CollectorRegistry()), Tables())
    state = fold(run_in_process(records, proc))
    reconciled = [v for k, v in state.items() if k[0] == "Stripe_Payout__c"]
    assert len(reconciled) == payouts
    assert all(p["fields"]["Reconciliation_Status__c"] == "Reconciled" for p in reconciled)
    return state

