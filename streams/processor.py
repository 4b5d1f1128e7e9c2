"""The stream worker's decisions, free of Kafka: order guard, mapping, payout joins, dead letters.

Each `on_*` method takes one input record (raw bytes plus where it came from) and the tables it owns
(any `MutableMapping`: Faust tables in the worker, dicts in tests) and returns a `Step` (outputs to
produce + table writes) without changing anything; `apply(step)` performs the writes. The worker sends
the outputs and applies the writes at once, without waiting for the broker's acknowledgements.

Copies: a version is `(created, lifecycle rank, event id)` (`core.order`), so a copy of an event applied (same
event id, same snapshot) has the very version of the `versions` entry it wrote and the order guard drops it
(a duplicate); a copy of an event older than the one applied is stale. No table of event ids is kept: a mapped
event writes one entry, its object's version; a dropped, skipped or dead-lettered one writes none.

Crash safety (at-least-once without per-record acks):
1. Every version / balance-transaction / payout entry stores the origin (partition, offset) of the input
   record that wrote it.
2. Faust commits an input offset only after `app.producer.flush()` has waited for every record produced
   so far (outputs and changelog), so every output of a committed record is durable. A failed delivery
   stops the worker before the next commit (see `streams.app`), so a flush never covers a lost output.
3. Anything not committed is delivered again after a crash or a rebalance, in partition order. Its table
   entry may have survived (RocksDB, or a changelog record that was delivered) while its outputs were
   lost. When such a record meets an entry carrying its *own* origin and its own content (for an event:
   its version), written by an earlier process, it is treated as not yet emitted and its outputs are
   produced again (upserts are idempotent by external id; a payout reconciliation is recomputed from the
   stored state, which already holds the record). Within one process the same origin means the record
   was already handed to this process's producer: a duplicate, as before.
4. An entry whose origin is *later* in the same partition was written by an uncommitted record that will
   itself be replayed after this one (and will re-emit, by 3): this record is treated as stale, so the
   replay never sends an older snapshot over a newer one. Each event carries the object's full snapshot,
   so the newer record's outputs supersede this one's, exactly as in the in-order run.
5. An entry from an earlier offset (or another partition, or without an origin: tables written before
   origins existed) is the state before this record: the ordinary rules apply. A copy of the event
   applied (same version, other origin) is a duplicate; an older version is stale.
Points 3-5 hold for an event with its one `versions` entry alone: the entry either survived with this record's
origin (re-emit) or holds what an earlier or later record wrote (the ordinary rule, or stale); no second entry
can disagree with it.

The tables and their entry formats are in `streams.table_entries`; the payout join in `streams.payout_join`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson

from core.version import Version
from paysync.codec import AvroCodec, CodecError
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.metrics import StreamMetrics
from streams.outputs import Origin, stamp_upsert
from streams.payout_join import PayoutJoin, header_message, member_message
from streams.ports import Mapper
from streams.steps import Input, Recorder, Step
from streams.table_entries import (
    Handled, Retention, Tables, Writer, bt_parts, bt_signature, version_parts, writer_of,
)

__all__ = ["Processor", "Retention", "Step", "Tables"]

log = logging.getLogger("paysync.streams")

EVENTS = "events"
BALANCE_TRANSACTIONS = "balance_transactions"


def _parse_json(text: str) -> Any:
    """orjson's parse (fast); anything it refuses (e.g. an integer beyond 64 bits) gets the stdlib's verdict."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _event_object(raw_event: str) -> dict[str, Any]:
    """`data.object` of a raw Stripe event; ValueError, KeyError or TypeError when there is none."""
    obj = _parse_json(raw_event)["data"]["object"]
    if not isinstance(obj, dict):
        raise TypeError("data.object is not an object")
    return obj


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
        self._handled = Handled()
        self._recorder = Recorder(metrics, mapper)
        self.payouts = PayoutJoin(mapper, self._recorder, tables, retention, self._handled)
        self._events_schema = STRIPE_EVENTS.schema
        self._bts_schema = STRIPE_BALANCE_TRANSACTIONS.schema

    def _receive(self, record: Input, schema: str, now_ms: int) -> tuple[dict[str, Any], bool] | Step:
        """Count `record`, note it as handled here, decode it: (value, handled here before), or its dead letter."""
        m = self.metrics
        m.child(m.processed, record.name).inc()
        handled_here = self._handled.begin(record.origin)
        try:
            decoded: dict[str, Any] = self.codec.decode(record.value, schema)
        except CodecError as exc:
            return self._recorder.dead(record, "decode", exc.code, exc.message)
        m.child(m.ingest_lag_seconds, record.name).observe(max(0, now_ms - decoded["received_at"]) / 1000)
        return decoded, handled_here

    # stripe.events ---------------------------------------------------------------------------

    def on_event(self, key: bytes | None, value: bytes | None, origin: Origin, now_ms: int) -> Step:
        """Guard and map one `stripe.events` record; payout events also feed the payout join.

        A mapped event writes one table entry (its object's version); a dropped one (a copy, or older than what is
        applied), a skipped or a dead-lettered one writes none.
        """
        m = self.metrics
        record = Input(EVENTS, origin, key, value)
        received = self._receive(record, self._events_schema, now_ms)
        if isinstance(received, Step):
            return received
        env, handled_here = received
        event_id, object_id, object_type = env["event_id"], env["object_id"], env["object_type"]
        if env.get("thin"):
            m.child(m.skipped, EVENTS, "thin_event").inc()
            return Step()
        if not self.mapper.supports(object_type):
            m.child(m.skipped, EVENTS, "unknown_type").inc()
            log.debug("skipped event of an unsynced type", extra={"event_id": event_id, "object_type": object_type})
            return Step()
        try:
            obj = _event_object(env["raw_event"])
        except (ValueError, KeyError, TypeError) as exc:
            return self._recorder.dead(record, "invalid", "BAD_EVENT_JSON", str(exc), event_id, object_id)
        meta: dict[str, Any] = {}
        dropped: list[Any] = []
        mapped = self._recorder.map_or_dead(
            record, lambda: self._guarded_map(object_type, obj, env, origin, handled_here, meta, dropped),
            event_id, object_id)
        if isinstance(mapped, Step):
            return mapped
        if dropped:
            m.child(dropped[0], EVENTS).inc()
            return Step()
        outputs = [stamp_upsert(u, origin, env["received_at"]) for u in mapped]
        if object_type == "payout":
            outputs.append(header_message(obj, object_id, meta, origin, env["received_at"]))
        self._recorder.count_upserts(outputs, EVENTS)
        return Step(outputs, [("versions", object_id, [meta["version"], origin.partition, origin.offset])])

    def _guarded_map(self, object_type: str, obj: dict[str, Any], env: dict[str, Any], origin: Origin,
                     handled_here: bool, meta: dict[str, Any], dropped: list[Any]) -> list[dict[str, Any]]:
        """The order guard, then the mapping: fills `meta` and returns the upserts, or returns [] with the counter
        of the drop (duplicates or stale) in `dropped`."""
        event_id, object_id = env["event_id"], env["object_id"]
        if str(env.get("event_type") or "").endswith(".deleted") and obj.get("deleted") is not True:
            # `invoice.deleted` carries the draft as it was: the deletion must outrank a same-second draft event
            obj = {**obj, "deleted": True}
        version = self.mapper.version_of(object_type, obj, env["created"], event_id)
        encoded = self.mapper.encode_version(version)
        counter = self._dropped_by_guard(object_id, version, encoded, origin, handled_here)
        if counter is not None:
            dropped.append(counter)
            return []
        event_meta = {
            "event_id": event_id, "event_type": env["event_type"], "created": env["created"],
            "account": env.get("account"), "livemode": env["livemode"], "version": encoded,
        }
        upserts = self.mapper.map_object(object_type, obj, event_meta)
        meta.update(event_meta)
        return upserts

    def _dropped_by_guard(self, object_id: str, version: Version, encoded: str, origin: Origin,
                          handled_here: bool) -> Any:
        """The counter to count this record under when the order guard drops it, else None.

        The version holds the event id, so an applied entry with the same encoded version was written by a copy of
        this event: written earlier, this record is a duplicate. Any other drop (older than the applied version, or
        an entry of a later record of the partition) is stale.
        """
        applied_entry = self.tables.versions.get(object_id)
        if applied_entry is None:
            return None
        applied_text, at_partition, at_offset = version_parts(applied_entry)
        same = applied_text == encoded
        writer = writer_of(at_partition, at_offset, origin, same, handled_here)
        if writer is Writer.LATER:
            return self.metrics.stale
        if writer is Writer.EARLIER:
            if same:
                return self.metrics.duplicates
            if not self.mapper.is_newer(version, self.mapper.decode_version(applied_text)):
                return self.metrics.stale
        return None

    # stripe.balance_transactions ---------------------------------------------------------------

    def on_balance_transaction(
        self, key: bytes | None, value: bytes | None, origin: Origin, now_ms: int
    ) -> Step:
        """Map one balance transaction (its upsert + the partial upsert of its source); members feed the payout join.

        A listing that carries less than one already applied (no payout after one with a payout) is stale.
        """
        m = self.metrics
        record = Input(BALANCE_TRANSACTIONS, origin, key, value)
        received = self._receive(record, self._bts_schema, now_ms)
        if isinstance(received, Step):
            return received
        bt, handled_here = received
        bt_id = bt["id"]
        signature = bt_signature(bt)
        skipped = self._bt_already_applied(bt, signature, origin, handled_here)
        if skipped is not None:
            m.child(skipped, BALANCE_TRANSACTIONS).inc()
            return Step()
        mapped = self._recorder.map_or_dead(record, lambda: self.mapper.map_balance_transaction(bt), object_id=bt_id)
        if isinstance(mapped, Step):
            return mapped
        outputs = [stamp_upsert(u, origin, bt["received_at"]) for u in mapped]
        payout_id = bt.get("payout_id")
        if payout_id and bt.get("type") != "payout" and bt.get("source_id") != payout_id:
            version = mapped[0]["version"] if mapped else str(bt["created"])
            outputs.append(member_message(bt, payout_id, version, origin))
        self._recorder.count_upserts(outputs, BALANCE_TRANSACTIONS)
        return Step(outputs, [("bts", bt_id, [*signature, origin.partition, origin.offset])])

    def _bt_already_applied(self, bt: dict[str, Any], signature: list[Any], origin: Origin,
                            handled_here: bool) -> Any:
        """The counter to count this record under when it must be skipped (duplicate or stale), else None."""
        applied_entry = self.tables.bts.get(bt["id"])
        if applied_entry is None:
            return None
        applied, at_partition, at_offset = bt_parts(applied_entry)
        writer = writer_of(at_partition, at_offset, origin, applied == signature, handled_here)
        if writer is Writer.LATER:
            return self.metrics.stale
        if writer is Writer.EARLIER:
            if applied == signature:
                return self.metrics.duplicates
            if applied[:3] > signature[:3] or (applied[3] is not None and applied[3] != bt.get("payout_id")):
                return self.metrics.stale
        return None

    # internal payout topic ---------------------------------------------------------------------

    def on_payout_bytes(self, key: bytes | None, value: bytes | None, now_ms: int, at: Origin) -> Step:
        """A record of the internal payout topic (`streams.payout_join.PayoutJoin.on_bytes`)."""
        return self.payouts.on_bytes(key, value, now_ms, at)

    def on_payout_message(self, message: dict[str, Any], now_ms: int, at: Origin | None = None) -> Step:
        """A decoded payout-join message (`streams.payout_join.PayoutJoin.on_message`)."""
        return self.payouts.on_message(message, now_ms, at)

    def apply(self, step: Step) -> None:
        """Perform a step's table writes (the worker does it right after handing the outputs to the producer)."""
        for table_name, key, value in step.writes:
            table = getattr(self.tables, table_name)
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value

    # expiry --------------------------------------------------------------------------------------

    def payout_closed(self, state: Any, now_ms: int) -> dict[str, Any] | None:
        """The small closed marker replacing a payout reconciled longer ago than the retention, else None."""
        return self.payouts.closed_marker(state, now_ms)
