"""The stream worker's decisions, free of Kafka: dedupe, order guard, mapping, payout joins, dead letters.

Each `on_*` method takes one input record (raw bytes plus where it came from) and the tables it owns
(any `MutableMapping`: Faust tables in the worker, dicts in tests) and returns a `Step` (outputs to
produce + table writes) without changing anything; `apply(step)` performs the writes. The worker sends
the outputs and applies the writes at once, without waiting for the broker's acknowledgements.

Crash safety (at-least-once without per-record acks):
1. Every dedupe / version / balance-transaction / payout entry stores the origin (partition, offset) of
   the input record that wrote it.
2. Faust commits an input offset only after `app.producer.flush()` has waited for every record produced
   so far (outputs and changelog), so every output of a committed record is durable. A failed delivery
   stops the worker before the next commit (see `streams.app`), so a flush never covers a lost output.
3. Anything not committed is delivered again after a crash or a rebalance, in partition order. Its table
   entries may have survived (RocksDB, or a changelog record that was delivered) while its outputs were
   lost. When such a record meets an entry carrying its *own* origin, written by an earlier process, it
   is treated as not yet emitted and its outputs are produced again (upserts are idempotent by external
   id; a payout reconciliation is recomputed from the stored state, which already holds the record).
   Within one process the same origin means the record was already handed to this process's producer:
   a duplicate, as before.
4. An entry whose origin is *later* in the same partition was written by an uncommitted record that will
   itself be replayed after this one (and will re-emit, by 3): this record is treated as stale, so the
   replay never sends an older snapshot over a newer one. Each event carries the object's full snapshot,
   so the newer record's outputs supersede this one's, exactly as in the in-order run.
5. An entry from an earlier offset (or another partition, or without an origin: tables written before
   origins existed) is the state before this record: the ordinary rules apply. A true duplicate (same
   event id, other origin) is dropped; an older version is stale.

Tables (values are JSON-able; the trailing `partition, offset` is the writer's origin):
- `dedupe`:   event id -> [first-seen ms, partition, offset] (forgotten after the retention).
- `versions`: Stripe object id -> [encoded order-guard version, partition, offset].
- `bts`:      balance transaction id -> [has payout, available, has count, payout id, status, count,
              partition, offset].
- `payouts`:  payout id -> {amount, currency, version, meta, members{bt id: [amount, fee, net, currency]},
              expected, reconciled_at,
              at: [partition, offset] of the internal payout-topic message that wrote it}.
Older values (a bare ms, a bare version string, a 6-item signature, a state without `at`) still read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from paysync.codec import AvroCodec, CodecError
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.metrics import StreamMetrics
from streams.outputs import Origin, Output, Target, dead_letter_output, stamp_upsert
from streams.ports import Mapper

log = logging.getLogger("paysync.streams")

_BUG_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError)
_SIGNATURE_LEN = 6


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


class Writer(Enum):
    """Who wrote a table entry, seen from the input record now being handled (module docstring, 3-5)."""

    EARLIER = "earlier"    # the state before this record: ordinary rules
    REPLAYED = "replayed"  # this very record, in an earlier process: re-emit its outputs
    LATER = "later"        # an uncommitted later record of the same partition: it re-emits, this one is stale


def _parse_json(text: str) -> Any:
    """orjson's parse (fast); anything it refuses (e.g. an integer beyond 64 bits) gets the stdlib's verdict."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _pack_member(member: Any) -> list[Any]:
    """A payout member as stored: [amount, fee, net, currency] (a member dict, the older format, packs the same)."""
    if isinstance(member, dict):
        return [member.get("amount"), member.get("fee"), member.get("net"), member.get("currency")]
    return list(member)


def _unpack_member(bt_id: str, stored: Any) -> dict[str, Any]:
    amount, fee, net, currency = _pack_member(stored)
    return {"balance_transaction_id": bt_id, "amount": amount, "fee": fee, "net": net, "currency": currency}


def _bt_signature(bt: dict[str, Any]) -> list[Any]:
    """Rank first (what a later listing adds: payout, availability, count), then the values themselves."""
    return [
        bt.get("payout_id") is not None, bt.get("status") == "available", bt.get("payout_transaction_count") is not None,
        bt.get("payout_id"), bt.get("status"), bt.get("payout_transaction_count"),
    ]


def _dedupe_parts(value: Any) -> tuple[int, int | None, int | None]:
    """(first-seen ms, partition, offset) of a dedupe entry; a bare ms (older format) has no origin."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), value[1], value[2]
    return int(value), None, None


def _version_parts(value: Any) -> tuple[str, int | None, int | None]:
    """(encoded version, partition, offset) of a versions entry; a bare string (older format) has no origin."""
    if isinstance(value, (list, tuple)):
        return str(value[0]), value[1], value[2]
    return str(value), None, None


def _bt_parts(value: Any) -> tuple[list[Any], int | None, int | None]:
    """(signature, partition, offset) of a bts entry; a bare signature (older format) has no origin."""
    items = list(value)
    if len(items) > _SIGNATURE_LEN:
        return items[:_SIGNATURE_LEN], items[_SIGNATURE_LEN], items[_SIGNATURE_LEN + 1]
    return items, None, None


class Processor:
    """Turns input records into outputs; one instance per worker process (it remembers what it handled)."""

    def __init__(
        self, mapper: Mapper, codec: AvroCodec, metrics: StreamMetrics, tables: Tables,
        retention: Retention = Retention(),
    ) -> None:
        self.mapper = mapper
        self.codec = codec
        self.metrics = metrics
        self.tables = tables
        self.retention = retention
        # (topic, partition) -> [lowest, highest] offset handled by this process (a contiguous range:
        # a partition is read in order, with no hole — `streams.continuity` fills the ones Faust leaves —
        # and after a rebalance resumes at a committed offset ≥ lowest).
        self._handled: dict[tuple[str, int], list[int]] = {}
        self._events_schema = STRIPE_EVENTS.schema
        self._bts_schema = STRIPE_BALANCE_TRANSACTIONS.schema

    # origins -----------------------------------------------------------------------------------

    def _begin(self, origin: Origin) -> bool:
        """Record that `origin` is being handled; True when this process already handled it (a redelivery)."""
        slot = (origin.topic, origin.partition)
        span = self._handled.get(slot)
        offset = origin.offset
        if span is None:
            self._handled[slot] = [offset, offset]
            return False
        seen = span[0] <= offset <= span[1]
        if offset < span[0]:
            span[0] = offset
        elif offset > span[1]:
            span[1] = offset
        return seen

    @staticmethod
    def _writer(partition: int | None, offset: int | None, origin: Origin, own: bool, handled_here: bool) -> Writer:
        """Place the writer of an entry relative to `origin`; `own`: the entry's content is this record's."""
        if partition is None or offset is None or partition != origin.partition:
            return Writer.EARLIER
        if offset == origin.offset:
            return Writer.REPLAYED if own and not handled_here else Writer.EARLIER
        return Writer.LATER if offset > origin.offset else Writer.EARLIER

    # stripe.events ---------------------------------------------------------------------------

    def on_event(self, key: bytes | None, value: bytes | None, origin: Origin, now_ms: int) -> Step:
        """Dedupe, guard, map one `stripe.events` record; payout events also feed the payout join."""
        m = self.metrics
        m.child(m.processed, "events").inc()
        handled_here = self._begin(origin)
        try:
            env = self.codec.decode(value, self._events_schema)
        except CodecError as exc:
            return self._dead("events", origin, key, value, "decode", exc.code, exc.message)
        event_id, object_id, object_type = env["event_id"], env["object_id"], env["object_type"]
        m.child(m.ingest_lag_seconds, "events").observe(max(0, now_ms - env["received_at"]) / 1000)
        seen = self.tables.dedupe.get(event_id)
        if seen is not None:
            seen_ms, seen_partition, seen_offset = _dedupe_parts(seen)
            writer = self._writer(seen_partition, seen_offset, origin, True, handled_here)
            if writer is Writer.EARLIER and now_ms - seen_ms < self.retention.dedupe_ms:
                m.child(m.duplicates, "events").inc()
                return Step()
        dedupe_entry = [now_ms, origin.partition, origin.offset]
        if env.get("thin"):
            m.child(m.skipped, "events", "thin_event").inc()
            return Step()
        if not self.mapper.supports(object_type):
            m.child(m.skipped, "events", "unknown_type").inc()
            log.debug("skipped event of an unsynced type", extra={"event_id": event_id, "object_type": object_type})
            return Step()
        try:
            raw = _parse_json(env["raw_event"])
            obj = raw["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError("data.object is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            return self._dead("events", origin, key, value, "invalid", "BAD_EVENT_JSON", str(exc), event_id, object_id)
        try:
            version = self.mapper.version_of(object_type, obj, env["created"], event_id)
            encoded = self.mapper.encode_version(version)
            applied_entry = self.tables.versions.get(object_id)
            if applied_entry is not None:
                applied_text, at_partition, at_offset = _version_parts(applied_entry)
                writer = self._writer(at_partition, at_offset, origin, applied_text == encoded, handled_here)
                if writer is Writer.LATER or (
                    writer is Writer.EARLIER
                    and not self.mapper.is_newer(version, self.mapper.decode_version(applied_text))
                ):
                    m.child(m.stale, "events").inc()
                    return Step(writes=[("dedupe", event_id, dedupe_entry)])
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
        return Step(outputs, [("versions", object_id, [encoded, origin.partition, origin.offset]),
                              ("dedupe", event_id, dedupe_entry)])

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
        m = self.metrics
        m.child(m.processed, "balance_transactions").inc()
        handled_here = self._begin(origin)
        try:
            bt = self.codec.decode(value, self._bts_schema)
        except CodecError as exc:
            return self._dead("balance_transactions", origin, key, value, "decode", exc.code, exc.message)
        bt_id = bt["id"]
        m.child(m.ingest_lag_seconds, "balance_transactions").observe(max(0, now_ms - bt["received_at"]) / 1000)
        signature = _bt_signature(bt)
        applied_entry = self.tables.bts.get(bt_id)
        if applied_entry is not None:
            applied, at_partition, at_offset = _bt_parts(applied_entry)
            writer = self._writer(at_partition, at_offset, origin, applied == signature, handled_here)
            if writer is Writer.LATER:
                m.child(m.stale, "balance_transactions").inc()
                return Step()
            if writer is Writer.EARLIER:
                if applied == signature:
                    m.child(m.duplicates, "balance_transactions").inc()
                    return Step()
                if applied[:3] > signature[:3] or (applied[3] is not None and applied[3] != bt.get("payout_id")):
                    m.child(m.stale, "balance_transactions").inc()
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
        return Step(outputs, [("bts", bt_id, [*signature, origin.partition, origin.offset])])

    # internal payout topic ---------------------------------------------------------------------

    def on_payout_bytes(self, key: bytes | None, value: bytes | None, now_ms: int, at: Origin) -> Step:
        """Decode a record of the internal payout topic and fold it; anything malformed is dead-lettered."""
        try:
            message = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            return self._dead("payouts", at, key, value, "decode", "BAD_JSON", f"payout-join record is not JSON: {exc}")
        if not (isinstance(message, dict) and isinstance(message.get("payout_id"), str)
                and message.get("kind") in ("header", "member")):
            return self._dead("payouts", at, key, value, "invalid", "BAD_PAYOUT_MESSAGE",
                              "payout-join record needs payout_id and kind header|member")
        try:
            return self.on_payout_message(message, now_ms, at)
        except (KeyError, TypeError, ValueError) as exc:
            return self._dead("payouts", at, key, value, "invalid", "BAD_PAYOUT_MESSAGE",
                              f"payout-join record is malformed: {type(exc).__name__}: {exc}")

    def on_payout_message(self, message: dict[str, Any], now_ms: int, at: Origin | None = None) -> Step:
        """Fold a payout header or member into the payout's state; emit its reconciliation once members are complete.

        `at` is where the message itself sits on the internal payout topic (None: not tracked, e.g. in tests);
        a message replayed at its own position re-emits the reconciliation (module docstring, 3).
        """
        m = self.metrics
        m.child(m.processed, "payouts").inc()
        handled_here = self._begin(at) if at is not None else False
        payout_id = str(message["payout_id"])
        state = dict(self.tables.payouts.get(payout_id) or {"members": {}})
        if state.get("closed"):
            m.child(m.duplicates, "payouts").inc()
            return Step()
        writer = Writer.EARLIER
        if at is not None and state.get("at"):
            at_partition, at_offset = state["at"]
            writer = self._writer(at_partition, at_offset, at, True, handled_here)
        if writer is Writer.LATER:
            m.child(m.stale, "payouts").inc()
            return Step()
        replayed = writer is Writer.REPLAYED
        members: dict[str, Any] = dict(state.get("members") or {})
        if message["kind"] == "header":
            old = state.get("version")
            if not replayed and old is not None and not self.mapper.is_newer(
                self.mapper.decode_version(message["version"]), self.mapper.decode_version(old)
            ):
                m.child(m.stale, "payouts").inc()
                return Step()
            state.update(amount=message["amount"], currency=message["currency"], version=message["version"],
                         meta=message["meta"])
        else:
            member = message["member"]
            bt_id = member["balance_transaction_id"]
            packed = _pack_member(member)
            expected = message.get("expected_count")
            if not replayed and bt_id in members and _pack_member(members[bt_id]) == packed and (
                expected is None or state.get("expected") == expected
            ):
                m.child(m.duplicates, "payouts").inc()
                return Step()
            members[bt_id] = packed
            state["members"] = members
            if expected is not None:
                state["expected"] = int(expected)
            state.setdefault("member_meta", message["meta"])
        if at is not None:
            state["at"] = [at.partition, at.offset]
        outputs: list[Output] = []
        expected_count = state.get("expected")
        if expected_count is not None and len(members) >= expected_count:
            meta = state.get("meta") or state["member_meta"]
            ordered = [_unpack_member(k, members[k]) for k in sorted(members)]
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
            m.child(m.reconciliations, status).inc()
            state["reconciled_at"] = now_ms if status == "Reconciled" else None
        self._count_upserts(outputs, "payouts")
        return Step(outputs, [("payouts", payout_id, state)])

    def apply(self, step: Step) -> None:
        """Perform a step's table writes (the worker does it right after handing the outputs to the producer)."""
        for table_name, key, value in step.writes:
            table = getattr(self.tables, table_name)
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    # expiry --------------------------------------------------------------------------------------

    def dedupe_expired(self, entry: Any, now_ms: int) -> bool:
        """Whether a dedupe entry (or a bare first-seen ms) is older than the retention."""
        return now_ms - _dedupe_parts(entry)[0] >= self.retention.dedupe_ms

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
                self.metrics.child(self.metrics.upserts, str(out.value.get("sobject"))).inc()
        if produced:
            self.metrics.child(self.metrics.applied, input_name).inc()

    def _dead(
        self, input_name: str, origin: Origin, key: bytes | None, value: bytes | None, kind: str, code: str,
        message: str, event_id: str | None = None, object_id: str | None = None,
    ) -> Step:
        self.metrics.child(self.metrics.dead_lettered, input_name, code).inc()
        log.warning("dead-lettered", extra={"topic": origin.topic, "partition": origin.partition,
                                            "offset": origin.offset, "event_id": event_id, "code": code})
        return Step([dead_letter_output(origin, key, value, kind, code, message, event_id, object_id)])
