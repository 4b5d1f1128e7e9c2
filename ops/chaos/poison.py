"""Poison records produced straight onto paysync's topics, and the check that each one reached the dead-letter
topic with its origin (topic, partition, offset).

Kinds (round-robin, so even a small run injects each): a bad magic byte and a truncated Avro record on
`stripe.events`, a well-formed envelope whose charge is invalid (amount as a string), a bad magic byte and a
balance transaction with an unknown currency on `stripe.balance_transactions`, and on `salesforce.upserts` an
undecodable record and an upsert Salesforce rejects (STRING_TOO_LONG). Ids carry `poison` so they can never
collide with simulated objects.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from paysync.codec import AvroCodec
from paysync.records import ENVELOPE, UPSERT, SalesforceUpsert, StripeEventEnvelope
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS

KINDS: tuple[str, ...] = (
    "events-bad-magic", "events-truncated", "events-invalid-charge",
    "balance-bad-magic", "balance-invalid-currency",
    "upserts-bad-magic", "upserts-string-too-long",
)


@dataclass(frozen=True)
class PoisonRecord:
    """Where one poison record landed."""

    kind: str
    topic: str
    partition: int
    offset: int

    @property
    def origin(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _envelope(n: int) -> StripeEventEnvelope:
    charge_id, event_id, created = f"ch_poison_{n}", f"evt_poison_{n}", int(time.time())
    charge = {"id": charge_id, "object": "charge", "amount": "12.34", "currency": "usd",
              "status": "succeeded", "created": created, "livemode": False}
    event = {"id": event_id, "object": "event", "type": "charge.succeeded", "created": created,
             "livemode": False, "data": {"object": charge}}
    return {"event_id": event_id, "event_type": "charge.succeeded", "created": created, "api_version": None,
            "livemode": False, "account": None, "source": "webhook", "received_at": _now_ms(),
            "object_id": charge_id, "object_type": "charge", "thin": False, "raw_event": json.dumps(event)}


def _balance_transaction(n: int) -> dict[str, Any]:
    now = int(time.time())
    raw = {"id": f"txn_poison_{n}", "object": "balance_transaction", "amount": 100, "currency": "zzz"}
    return {"id": raw["id"], "source_id": None, "payout_id": None, "payout_transaction_count": None, "account": None,
            "livemode": False, "type": "charge", "reporting_category": "charge", "amount": 100, "fee": 0, "net": 100,
            "currency": "zzz", "exchange_rate": None, "available_on": now, "created": now, "status": "available",
            "source": "poll", "api_version": None, "received_at": _now_ms(), "raw": json.dumps(raw)}


def _upsert(n: int) -> SalesforceUpsert:
    return {"sobject": "Stripe_Balance_Transaction__c", "external_id_field": "Stripe_Balance_Transaction_Id__c",
            "external_id": f"txn_poison_{n}", "fields": {"Type__c": "x" * 300}, "parents": [],
            "source_event_id": f"evt_poison_{n}", "version": f"0:0:evt_poison_{n}", "origin_topic": None,
            "origin_partition": None, "origin_offset": None, "ingested_at": _now_ms()}


def poison_value(kind: str, n: int, codec: AvroCodec) -> tuple[str, bytes, bytes]:
    """(unprefixed topic name, key, value) of poison record number `n` of `kind`."""
    if kind == "events-bad-magic":
        return STRIPE_EVENTS.name, f"ch_poison_{n}".encode(), b"\x07not avro at all"
    if kind == "events-truncated":
        full = codec.encode_record(ENVELOPE, _envelope(n))
        return STRIPE_EVENTS.name, f"ch_poison_{n}".encode(), full[: len(full) // 2]
    if kind == "events-invalid-charge":
        return STRIPE_EVENTS.name, f"ch_poison_{n}".encode(), codec.encode_record(ENVELOPE, _envelope(n))
    if kind == "balance-bad-magic":
        return STRIPE_BALANCE_TRANSACTIONS.name, f"txn_poison_{n}".encode(), b"\xff\xfe garbage"
    if kind == "balance-invalid-currency":
        return (STRIPE_BALANCE_TRANSACTIONS.name, f"txn_poison_{n}".encode(),
                codec.encode(STRIPE_BALANCE_TRANSACTIONS.schema, _balance_transaction(n)))
    if kind == "upserts-bad-magic":
        return SALESFORCE_UPSERTS.name, f"Stripe_Balance_Transaction__c:txn_poison_{n}".encode(), b"\x00\x01"
    if kind == "upserts-string-too-long":
        return (SALESFORCE_UPSERTS.name, f"Stripe_Balance_Transaction__c:txn_poison_{n}".encode(),
                codec.encode_record(UPSERT, _upsert(n)))
    raise ValueError(f"unknown poison kind {kind!r}")


class PoisonInjector:
    """Produces poison records and remembers where each landed."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.prefix = prefix
        self.codec = AvroCodec()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "message.timeout.ms": 120_000})
        self.injected: list[PoisonRecord] = []
        self._count = 0

    def inject(self, kind: str | None = None) -> PoisonRecord:
        """Produce one poison record (the next kind in turn unless given) and wait for its offset."""
        kind = kind or KINDS[self._count % len(KINDS)]
        self._count += 1
        topic, key, value = poison_value(kind, self._count, self.codec)
        landed: list[Message] = []
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            (errors.append(err) if err is not None else landed.append(msg))

        self.producer.produce(self.prefix + topic, key=key, value=value, on_delivery=on_delivery)
        if self.producer.flush(130) != 0 or errors or not landed:
            raise RuntimeError(f"poison record {kind} was not acknowledged: {errors}")
        msg = landed[0]
        record = PoisonRecord(kind, str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))
        self.injected.append(record)
        return record


def read_dead_letters(bootstrap: str, prefix: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record of the dead-letter topic, decoded."""
    topic = DEAD_LETTERS.full_name(prefix)
    codec = AvroCodec()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}chaos-dlq-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out: list[dict[str, Any]] = []
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in todo])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            out.append(codec.decode(msg.value(), DEAD_LETTERS.schema))
            if int(msg.offset() or 0) + 1 >= ends[int(msg.partition() or 0)]:
                todo.discard(int(msg.partition() or 0))
        if todo:
            raise TimeoutError(f"could not read the dead-letter topic to its end within {timeout:.0f} s")
    finally:
        consumer.close()
    return out


def missing_poison(injected: list[PoisonRecord], dead_letters: list[dict[str, Any]]) -> list[PoisonRecord]:
    """The poison records with no dead letter naming their origin."""
    origins = {(d["topic"], int(d["partition"]), int(d["offset"])) for d in dead_letters}
    return [p for p in injected if p.origin not in origins]


def unexpected_dead_letters(injected: list[PoisonRecord], dead_letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dead letters that are not about an injected poison record (a real record was given up on)."""
    origins = {p.origin for p in injected}
    return [d for d in dead_letters if (d["topic"], int(d["partition"]), int(d["offset"])) not in origins]
