"""The stream worker's decisions, free of Kafka: dedupe, order guard, mapping, payout joins, dead letters.

Each `on_*` method takes one input record (raw bytes plus where it came from) and the tables it owns
(any `MutableMapping`: Faust tables in the worker, dicts in tests) and returns the outputs to produce.
Contract, per the at-least-once rules: a method returns a `Step` (outputs + table writes) and changes
nothing; the worker produces the outputs, waits for the broker to acknowledge them, and only then
calls `apply(step)`. A crash in between replays the record, which re-produces identical idempotent
upserts; a table can never remember an event whose outputs were lost.

Tables (values are JSON-able):
- `dedupe`:   event id -> first-seen ms (forgotten after the retention).
- `versions`: Stripe object id -> encoded order-guard version last applied.
- `bts`:      balance transaction id -> [has payout, available, has count, payout id, status, count].
- `payouts`:  payout id -> {amount, currency, version, meta, members{bt id: member}, expected, reconciled_at}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from paysync.codec import AvroCodec, CodecError
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.metrics import StreamMetrics
from streams.outputs import Origin, Output, Target, dead_letter_output, stamp_upsert
from streams.ports import Mapper

log = logging.getLogger("paysync.streams")

_BUG_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError)


@dataclass(frozen=True)
class Retention:
    """How long table entries live (milliseconds)."""

    dedupe_ms: int = 35 * 24 * 3600 * 1000
    payout_ms: int = 72 * 3600 * 1000


@dataclass
class Tables:
    """The four tables the processor reads and writes."""

    dedupe: MutableMapping[str, Any] = field(default_factory=dict)
    versions: MutableMapping[str, Any] = field(default_factory=dict)
    bts: MutableMapping[str, Any] = field(default_factory=dict)
    payouts: MutableMapping[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """What one input record leads to: records to produce, then table writes (`None` value = delete)."""

    outputs: list[Output] = field(default_factory=list)
    writes: list[tuple[str, str, Any]] = field(default_factory=list)


def _bt_signature(bt: dict[str, Any]) -> list[Any]:
    """Rank first (what a later listing adds: payout, availability, count), then the values themselves."""
    return [
        bt.get("payout_id") is not None, bt.get("status") == "available", bt.get("payout_transaction_count") is not None,
        bt.get("payout_id"), bt.get("status"), bt.get("payout_transaction_count"),
    ]


class Processor:
    """Turns input records into outputs; one instance per worker."""

    def __init__(
        self, mapper: Mapper, codec: AvroCodec, metrics: StreamMetrics, tables: Tables,
        retention: Retention = Retention(),
    ) -> None:
        self.mapper = mapper
        self.codec = codec
        self.metrics = metrics
        self.tables = tables
        self.retention = retention

    # stripe.events ---------------------------------------------------------------------------

    def on_event(self, key: bytes | None, value: bytes | None, origin: Origin, now_ms: int) -> Step:
        """Dedupe, guard, map one `stripe.events` record; payout events also feed the payout join."""
        self.metrics.processed.labels("events").inc()
        try:
            env = self.codec.decode(value, STRIPE_EVENTS.schema)
        except CodecError as exc:
            return self._dead("events", origin, key, value, "decode", exc.code, exc.message)
        event_id, object_id, object_type = env["event_id"], env["object_id"], env["object_type"]
        self.metrics.ingest_lag_seconds.labels("events").observe(max(0, now_ms - env["received_at"]) / 1000)
        seen = self.tables.dedupe.get(event_id)
        if seen is not None and now_ms - int(seen) < self.retention.dedupe_ms:
            self.metrics.duplicates.labels("events").inc()
            return Step()
        if env.get("thin"):
            self.metrics.skipped.labels("events", "thin_event").inc()
            return Step()
        if not self.mapper.supports(object_type):
            self.metrics.skipped.labels("events", "unknown_type").inc()
            log.info("skipped event of an unsynced type", extra={"event_id": event_id, "object_type": object_type})
            return Step()
        try:
            raw = json.loads(env["raw_event"])
            obj = raw["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError("data.object is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            return self._dead("events", origin, key, value, "invalid", "BAD_EVENT_JSON", str(exc), event_id, object_id)
        try:
            version = self.mapper.version_of(object_type, obj, env["created"], event_id)
            applied_text = self.tables.versions.get(object_id)
            applied = self.mapper.decode_version(applied_text) if applied_text is not None else None
            if not self.mapper.is_newer(version, applied):
                self.metrics.stale.labels("events").inc()
                return Step(writes=[("dedupe", event_id, now_ms)])
            encoded = self.mapper.encode_version(version)
            meta = {
                "event_id": event_id, "event_type": env["event_type"], "created": env["created"],
                "account": env.get("account"), "livemode": env["livemode"], "version": encoded,
            }
            upserts = self.mapper.map_object(object_type, obj, meta)
        except Exception as exc:  # noqa: BLE001 - sorted just below: mapping errors and bugs are dead-lettered
            if self.mapper.is_mapping_error(exc):
                code = str(getattr(exc, "code", "") or "MAPPING_ERROR")
                return self._dead("events", origin, key, value, "invalid", code, str(exc), event_id, object_id)
            if isinstance(exc, _BUG_ERRORS):
                log.exception("mapping failed unexpectedly", extra={"event_id": event_id, "object_id": object_id})
                return self._dead("events", origin, key, value, "internal", type(exc).__name__, str(exc),
                                  event_id, object_id)
            raise
        outputs = [stamp_upsert(u, origin, env["received_at"]) for u in upserts]
        if object_type == "payout":
            outputs.append(self._payout_header(obj, object_id, meta, origin, env["received_at"]))
        self._count_upserts(outputs, "events")
        return Step(outputs, [("versions", object_id, encoded), ("dedupe", event_id, now_ms)])

    def _payout_header(
        self, obj: dict[str, Any], payout_id: str, meta: dict[str, Any], origin: Origin, received_at: int
    ) -> Output:
        amount = obj.get("amount")
        message = {
            "kind": "header", "payout_id": payout_id,
            "amount": amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            "currency": obj.get("currency"), "version": meta["version"], "meta": meta,
            "origin": [origin.topic, origin.partition, origin.offset], "received_at": received_at,
        }
        return Output(Target.PAYOUT, payout_id.encode(), message)

    # stripe.balance_transactions ---------------------------------------------------------------

    def on_balance_transaction(
        self, key: bytes | None, value: bytes | None, origin: Origin, now_ms: int
    ) -> Step:
        """Map one balance transaction (its upsert + the partial upsert of its source); members feed the payout join.

        A listing that carries less than one already applied (no payout after one with a payout) is stale.
        """
        self.metrics.processed.labels("balance_transactions").inc()
        try:
            bt = self.codec.decode(value, STRIPE_BALANCE_TRANSACTIONS.schema)
        except CodecError as exc:
            return self._dead("balance_transactions", origin, key, value, "decode", exc.code, exc.message)
        bt_id = bt["id"]
        self.metrics.ingest_lag_seconds.labels("balance_transactions").observe(
            max(0, now_ms - bt["received_at"]) / 1000)
        signature = _bt_signature(bt)
        applied = self.tables.bts.get(bt_id)
        if applied is not None:
            if list(applied) == signature:
                self.metrics.duplicates.labels("balance_transactions").inc()
                return Step()
            if list(applied[:3]) > signature[:3] or (applied[3] is not None and applied[3] != bt.get("payout_id")):
                self.metrics.stale.labels("balance_transactions").inc()
                return Step()
        try:
            upserts = self.mapper.map_balance_transaction(bt)
        except Exception as exc:  # noqa: BLE001 - sorted just below
            if self.mapper.is_mapping_error(exc):
                code = str(getattr(exc, "code", "") or "MAPPING_ERROR")
                return self._dead("balance_transactions", origin, key, value, "invalid", code, str(exc),
                                  object_id=bt_id)
            if isinstance(exc, _BUG_ERRORS):
                log.exception("balance transaction mapping failed unexpectedly", extra={"object_id": bt_id})
                return self._dead("balance_transactions", origin, key, value, "internal", type(exc).__name__,
                                  str(exc), object_id=bt_id)
            raise
        outputs = [stamp_upsert(u, origin, bt["received_at"]) for u in upserts]
        payout_id = bt.get("payout_id")
        if payout_id and bt.get("type") != "payout" and bt.get("source_id") != payout_id:
            outputs.append(Output(Target.PAYOUT, payout_id.encode(), {
                "kind": "member", "payout_id": payout_id,
                "member": {"balance_transaction_id": bt_id, "amount": bt["amount"], "fee": bt["fee"],
                           "net": bt["net"], "currency": bt["currency"]},
                "expected_count": bt.get("payout_transaction_count"),
                "meta": {"event_id": None, "event_type": None, "created": bt["created"], "account": bt.get("account"),
                         "livemode": bt["livemode"], "version": upserts[0]["version"] if upserts else str(bt["created"])},
                "origin": [origin.topic, origin.partition, origin.offset], "received_at": bt["received_at"],
            }))
        self._count_upserts(outputs, "balance_transactions")
        return Step(outputs, [("bts", bt_id, signature)])

    # internal payout topic ---------------------------------------------------------------------

    def on_payout_message(self, message: dict[str, Any], now_ms: int) -> Step:
        """Fold a payout header or member into the payout's state; emit its reconciliation once members are complete."""
        self.metrics.processed.labels("payouts").inc()
        payout_id = str(message["payout_id"])
        state = dict(self.tables.payouts.get(payout_id) or {"members": {}})
        if state.get("closed"):
            self.metrics.duplicates.labels("payouts").inc()
            return Step()
        members: dict[str, Any] = dict(state.get("members") or {})
        if message["kind"] == "header":
            old = state.get("version")
            if old is not None and not self.mapper.is_newer(
                self.mapper.decode_version(message["version"]), self.mapper.decode_version(old)
            ):
                self.metrics.stale.labels("payouts").inc()
                return Step()
            state.update(amount=message["amount"], currency=message["currency"], version=message["version"],
                         meta=message["meta"])
        else:
            member = message["member"]
            bt_id = member["balance_transaction_id"]
            expected = message.get("expected_count")
            if members.get(bt_id) == member and (expected is None or state.get("expected") == expected):
                self.metrics.duplicates.labels("payouts").inc()
                return Step()
            members[bt_id] = member
            state["members"] = members
            if expected is not None:
                state["expected"] = int(expected)
            state.setdefault("member_meta", message["meta"])
        outputs: list[Output] = []
        expected_count = state.get("expected")
        if expected_count is not None and len(members) >= expected_count:
            meta = state.get("meta") or state["member_meta"]
            ordered = [members[k] for k in sorted(members)]
            origin = Origin(*message["origin"])
            try:
                upsert = self.mapper.reconcile_payout(
                    payout_id, state.get("amount"), state.get("currency"), ordered, expected_count, meta)
            except Exception as exc:  # noqa: BLE001 - mapping errors are dead-lettered, anything else raises
                if not self.mapper.is_mapping_error(exc):
                    raise
                code = str(getattr(exc, "code", "") or "MAPPING_ERROR")
                dead = self._dead("payouts", origin, payout_id.encode(), json.dumps(message).encode(), "invalid",
                                  code, str(exc), object_id=payout_id)
                return Step(dead.outputs, [("payouts", payout_id, state)])
            outputs.append(stamp_upsert(upsert, origin, message.get("received_at")))
            status = str(upsert.get("fields", {}).get("Reconciliation_Status__c") or "unknown")
            self.metrics.reconciliations.labels(status).inc()
            state["reconciled_at"] = now_ms if status == "Reconciled" else None
        self._count_upserts(outputs, "payouts")
        return Step(outputs, [("payouts", payout_id, state)])

    def apply(self, step: Step) -> None:
        """Perform a step's table writes (after its outputs were acknowledged)."""
        for table_name, key, value in step.writes:
            table = getattr(self.tables, table_name)
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    # expiry --------------------------------------------------------------------------------------

    def dedupe_expired(self, first_seen_ms: Any, now_ms: int) -> bool:
        """Whether a dedupe entry is older than the retention."""
        return now_ms - int(first_seen_ms) >= self.retention.dedupe_ms

    def payout_closed(self, state: Any, now_ms: int) -> dict[str, Any] | None:
        """The small closed marker replacing a payout reconciled longer ago than the retention, else None."""
        if not isinstance(state, dict) or state.get("closed"):
            return None
        done = state.get("reconciled_at")
        if done is None or now_ms - int(done) < self.retention.payout_ms:
            return None
        return {"closed": True, "version": state.get("version"), "count": len(state.get("members") or {}),
                "reconciled_at": done}

    # helpers -----------------------------------------------------------------------------------

    def _count_upserts(self, outputs: list[Output], input_name: str) -> None:
        produced = False
        for out in outputs:
            if out.target is Target.UPSERT:
                produced = True
                self.metrics.upserts.labels(str(out.value.get("sobject"))).inc()
        if produced:
            self.metrics.applied.labels(input_name).inc()

    def _dead(
        self, input_name: str, origin: Origin, key: bytes | None, value: bytes | None, kind: str, code: str,
        message: str, event_id: str | None = None, object_id: str | None = None,
    ) -> Step:
        self.metrics.dead_lettered.labels(input_name, code).inc()
        log.warning("dead-lettered", extra={"topic": origin.topic, "partition": origin.partition,
                                            "offset": origin.offset, "event_id": event_id, "code": code})
        return Step([dead_letter_output(origin, key, value, kind, code, message, event_id, object_id)])
