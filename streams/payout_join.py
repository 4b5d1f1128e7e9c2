"""The payout join: payout headers (from payout events) and members (from balance transactions) meet, keyed by
payout id, on the worker's internal payout-join topic; once every member is in, the reconciliation is emitted.

The rule itself (Σ net = amount → Reconciled) is `core.payout_reconciliation`; this module keeps the state
(`payouts` table, `streams.table_entries`) and its crash safety (`streams.processor`'s docstring, 3).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from streams.outputs import Origin, Output, Target, stamp_upsert
from streams.ports import Mapper
from streams.steps import Input, Recorder, Step
from streams.table_entries import Handled, Retention, Tables, Writer, pack_member, unpack_member, writer_of

PAYOUTS = "payouts"


def header_message(obj: dict[str, Any], payout_id: str, meta: dict[str, Any], origin: Origin,
                   received_at: int) -> Output:
    """The payout-join message of a payout event: its amount, currency and version."""
    amount = obj.get("amount")
    message = {
        "kind": "header", "payout_id": payout_id,
        "amount": amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        "currency": obj.get("currency"), "version": meta["version"], "meta": meta,
        "automatic": obj.get("automatic") if isinstance(obj.get("automatic"), bool) else None,
        "reconciliation_status": obj.get("reconciliation_status") if isinstance(
            obj.get("reconciliation_status"), str) else None,
        "origin": [origin.topic, origin.partition, origin.offset], "received_at": received_at,
    }
    return Output(Target.PAYOUT, payout_id.encode(), message)


def member_message(bt: dict[str, Any], payout_id: str, version: str, origin: Origin) -> Output:
    """The payout-join message of a balance transaction paid out by `payout_id`."""
    return Output(Target.PAYOUT, payout_id.encode(), {
        "kind": "member", "payout_id": payout_id,
        "member": {"balance_transaction_id": bt["id"], "amount": bt["amount"], "fee": bt["fee"],
                   "net": bt["net"], "currency": bt["currency"]},
        "expected_count": bt.get("payout_transaction_count"),
        "meta": {"event_id": None, "event_type": None, "created": bt["created"], "account": bt.get("account"),
                 "livemode": bt["livemode"], "version": version},
        "origin": [origin.topic, origin.partition, origin.offset], "received_at": bt["received_at"],
    })


class PayoutJoin:
    """Folds payout-join messages into the `payouts` table and emits reconciliations."""

    def __init__(self, mapper: Mapper, recorder: Recorder, tables: Tables, retention: Retention,
                 handled: Handled) -> None:
        self.mapper = mapper
        self.recorder = recorder
        self.metrics = recorder.metrics
        self.tables = tables
        self.retention = retention
        self.handled = handled

    def on_bytes(self, key: bytes | None, value: bytes | None, now_ms: int, at: Origin) -> Step:
        """Decode a record of the internal payout topic and fold it; anything malformed is dead-lettered."""
        record = Input(PAYOUTS, at, key, value)
        try:
            message = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            return self.recorder.dead(record, "decode", "BAD_JSON", f"payout-join record is not JSON: {exc}")
        if not (isinstance(message, dict) and isinstance(message.get("payout_id"), str)
                and message.get("kind") in ("header", "member")):
            return self.recorder.dead(record, "invalid", "BAD_PAYOUT_MESSAGE",
                                      "payout-join record needs payout_id and kind header|member")
        try:
            return self.on_message(message, now_ms, at)
        except (KeyError, TypeError, ValueError) as exc:
            return self.recorder.dead(record, "invalid", "BAD_PAYOUT_MESSAGE",
                                      f"payout-join record is malformed: {type(exc).__name__}: {exc}")

    def on_message(self, message: dict[str, Any], now_ms: int, at: Origin | None = None) -> Step:
        """Fold a payout header or member into the payout's state; emit its reconciliation once members are complete.

        `at` is where the message itself sits on the internal payout topic (None: not tracked, e.g. in tests);
        a message replayed at its own position re-emits the reconciliation.
        """
        m = self.metrics
        m.child(m.processed, PAYOUTS).inc()
        handled_here = self.handled.begin(at) if at is not None else False
        payout_id = str(message["payout_id"])
        state = dict(self.tables.payouts.get(payout_id) or {"members": {}})
        if state.get("closed"):
            m.child(m.duplicates, PAYOUTS).inc()
            return Step()
        writer = Writer.EARLIER
        if at is not None and state.get("at"):
            at_partition, at_offset = state["at"]
            writer = writer_of(at_partition, at_offset, at, True, handled_here)
        if writer is Writer.LATER:
            m.child(m.stale, PAYOUTS).inc()
            return Step()
        folded = self._fold(state, message, replayed=writer is Writer.REPLAYED)
        if not folded:
            return Step()
        if at is not None:
            state["at"] = [at.partition, at.offset]
        return self._reconcile(state, payout_id, message, now_ms)

    def _fold(self, state: dict[str, Any], message: dict[str, Any], replayed: bool) -> bool:
        """Fold `message` into `state`; False (counted) when it is stale or a duplicate."""
        m = self.metrics
        if message["kind"] == "header":
            old = state.get("version")
            if not replayed and old is not None and not self.mapper.is_newer(
                self.mapper.decode_version(message["version"]), self.mapper.decode_version(old)
            ):
                m.child(m.stale, PAYOUTS).inc()
                return False
            state.update(amount=message["amount"], currency=message["currency"], version=message["version"],
                         meta=message["meta"], automatic=message.get("automatic"),
                         reconciliation_status=message.get("reconciliation_status"))
            return True
        members: dict[str, Any] = dict(state.get("members") or {})
        member = message["member"]
        bt_id = member["balance_transaction_id"]
        packed = pack_member(member)
        expected = message.get("expected_count")
        if not replayed and members.get(bt_id) == packed and (expected is None or state.get("expected") == expected):
            m.child(m.duplicates, PAYOUTS).inc()
            return False
        members[bt_id] = packed
        state["members"] = members
        if expected is not None:
            state["expected"] = int(expected)
        state.setdefault("member_meta", message["meta"])
        return True

    def _reconcile(self, state: dict[str, Any], payout_id: str, message: dict[str, Any], now_ms: int) -> Step:
        """The step writing `state`, with the payout's reconciliation once all its members are in."""
        members: dict[str, Any] = state.get("members") or {}
        expected_count = state.get("expected")
        writes = [(PAYOUTS, payout_id, state)]
        manual = state.get("automatic") is False or state.get("reconciliation_status") == "not_applicable"
        if not manual and (expected_count is None or len(members) < expected_count):
            return Step([], writes)  # not all in yet (an in_progress list is never concluded: core rule)
        meta = state.get("meta") or state["member_meta"]
        ordered = [unpack_member(k, list(members[k])) for k in sorted(members)]
        origin = Origin(*message["origin"])
        record = Input(PAYOUTS, origin, payout_id.encode(), json.dumps(message).encode())
        mapped = self.recorder.map_or_dead(
            record, lambda: [self.mapper.reconcile_payout(
                payout_id, state.get("amount"), state.get("currency"), ordered, expected_count, meta,
                automatic=state.get("automatic"), reconciliation_status=state.get("reconciliation_status"))],
            object_id=payout_id, bug_errors=())
        if isinstance(mapped, Step):
            return Step(mapped.outputs, writes)
        upsert = mapped[0]
        outputs = [stamp_upsert(upsert, origin, message.get("received_at"))]
        status = str(upsert.get("fields", {}).get("Reconciliation_Status__c") or "unknown")
        self.metrics.child(self.metrics.reconciliations, status).inc()
        state["reconciled_at"] = now_ms if status in ("Reconciled", "Not Applicable (manual payout)") else None
        self.recorder.count_upserts(outputs, PAYOUTS)
        return Step(outputs, writes)

    def closed_marker(self, state: Any, now_ms: int) -> dict[str, Any] | None:
        """The small closed marker replacing a payout reconciled longer ago than the retention, else None."""
        if not isinstance(state, dict) or state.get("closed"):
            return None
        done = state.get("reconciled_at")
        if done is None or now_ms - int(done) < self.retention.payout_ms:
            return None
        return {"closed": True, "version": state.get("version"), "count": len(state.get("members") or {}),
                "reconciled_at": done}
