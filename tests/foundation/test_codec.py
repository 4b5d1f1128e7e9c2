"""The Avro codec: every schema round-trips, and bad bytes raise one typed error naming the problem."""

from __future__ import annotations

import json
import time

import pytest

from paysync.codec import SINGLE_OBJECT_MAGIC, AvroCodec, CodecError
from paysync.deadletter import dead_letter


def envelope(**overrides: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "event_id": "evt_1",
        "event_type": "charge.succeeded",
        "created": 1_700_000_000,
        "api_version": "2026-10-28.endive",
        "livemode": False,
        "account": "acct_1",
        "source": "webhook",
        "received_at": int(time.time() * 1000),
        "object_id": "ch_1",
        "object_type": "charge",
        "thin": False,
        "raw_event": json.dumps({"id": "evt_1", "object": "event", "data": {"object": {"id": "ch_1"}}}),
    }
    rec.update(overrides)
    return rec


SAMPLES: dict[str, dict[str, object]] = {
    "paysync.StripeEventEnvelope": envelope(),
    "paysync.StripeBalanceTransaction": {
        "id": "txn_1", "source_id": "ch_1", "payout_id": None, "payout_transaction_count": None, "account": None,
        "livemode": False, "type": "charge", "reporting_category": "charge", "amount": 1000, "fee": 59, "net": 941,
        "currency": "usd", "exchange_rate": "0.912345", "available_on": 1_700_100_000, "created": 1_700_000_000,
        "status": "pending", "source": "poll", "api_version": None, "received_at": 1_700_000_000_123, "raw": "{}",
    },
    "paysync.SalesforceUpsert": {
        "sobject": "Stripe_Payment__c", "external_id_field": "Stripe_Charge_Id__c", "external_id": "ch_1",
        "fields": {"Amount__c": "10.00", "Livemode__c": False, "Attempt_Count__c": 3, "Failure_Code__c": None},
        "parents": [{"relationship": "Account__r", "sobject": "Account",
                     "external_id_field": "Stripe_Customer_Id__c", "external_id": "cus_1"}],
        "source_event_id": "evt_1", "version": "1700000000:1.0:evt_1", "origin_topic": "stripe.events",
        "origin_partition": 3, "origin_offset": 42, "ingested_at": 1_700_000_000_123,
    },
    "paysync.DeadLetter": dead_letter(topic="stripe.events", partition=1, offset=7, stage="streams",
                                      error_kind="decode", error_code="BAD_MAGIC", message="nope",
                                      key=b"ch_1", value=b"\x00\x01", event_id="evt_1"),
    "paysync.PollerCursor": {"poller": "events", "position": "evt_9", "created": 1_700_000_000, "updated_at": 1},
}


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


def test_every_schema_is_sampled(codec: AvroCodec) -> None:
    assert set(codec.schemas) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(codec: AvroCodec, name: str) -> None:
    data = codec.encode(name, SAMPLES[name])
    assert data[:2] == SINGLE_OBJECT_MAGIC
    assert data[2:10] == codec.schema(name).fingerprint
    assert codec.decode(data, name) == SAMPLES[name]
    assert codec.decode(data) == SAMPLES[name]


def test_fingerprint_is_crc64_avro_little_endian(codec: AvroCodec) -> None:
    # The spec's test vector: the fingerprint of the canonical form of "null" is 0x63dd24e7cc258f8a.
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")) == (0x63DD24E7CC258F8A).to_bytes(8, "little")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "TRUNCATED"),
        (b"\xc3", "BAD_MAGIC"),
        (b"\xc3\x01\x01\x02", "TRUNCATED"),
        (b"\x4f\x62\x6a\x01" + b"\x00" * 12, "BAD_MAGIC"),
        (b"\xc3\x01" + b"\xff" * 8 + b"\x02", "UNKNOWN_FINGERPRINT"),
    ],
)
def test_bad_bytes_raise_named_errors(codec: AvroCodec, data: bytes, code: str) -> None:
    with pytest.raises(CodecError) as info:
        codec.decode(data, "paysync.StripeEventEnvelope")
    assert info.value.code == code
    assert code in str(info.value)


def test_truncated_body(codec: AvroCodec) -> None:
    data = codec.encode("paysync.StripeEventEnvelope", envelope())
    with pytest.raises(CodecError) as info:
        codec.decode(data[:-20])
    assert info.value.code == "TRUNCATED"


def test_trailing_garbage_is_rejected(codec: AvroCodec) -> None:
    data = codec.encode("paysync.PollerCursor", SAMPLES["paysync.PollerCursor"])
    with pytest.raises(CodecError) as info:
        codec.decode(data + b"\x00")
    assert info.value.code == "INVALID_RECORD"


def test_reading_as_another_schema_is_refused(codec: AvroCodec) -> None:
    data = codec.encode("paysync.PollerCursor", SAMPLES["paysync.PollerCursor"])
    with pytest.raises(CodecError) as info:
        codec.decode(data, "paysync.DeadLetter")
    assert info.value.code == "INCOMPATIBLE"


def test_invalid_record_is_refused_on_encode(codec: AvroCodec) -> None:
    with pytest.raises(CodecError) as info:
        codec.encode("paysync.StripeEventEnvelope", envelope(created="yesterday"))
    assert info.value.code == "INVALID_RECORD"
    with pytest.raises(CodecError) as info:
        codec.encode("paysync.StripeEventEnvelope", envelope(source="carrier-pigeon"))
    assert info.value.code == "INVALID_RECORD"


def test_unknown_schema_name(codec: AvroCodec) -> None:
    with pytest.raises(CodecError) as info:
        codec.encode("paysync.Nope", {})
    assert info.value.code == "UNKNOWN_SCHEMA"


def test_confluent_wire_format_with_a_registry() -> None:
    codec = AvroCodec(registry_url="mock://paysync-test")
    data = codec.encode("paysync.StripeEventEnvelope", envelope(received_at=1_700_000_000_123), topic="stripe.events")
    assert data[:1] == b"\x00"
    assert int.from_bytes(data[1:5], "big") > 0  # the registry's schema id
    decoded = codec.decode(data, "paysync.StripeEventEnvelope", topic="stripe.events")
    assert decoded == envelope(received_at=1_700_000_000_123)
