"""The TypedDicts of `paysync.records` match their Avro schemas field for field, and the typed codec round-trips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paysync.codec import AvroCodec
from paysync.deadletter import dead_letter_record
from paysync.paths import SCHEMAS_DIR
from paysync.records import DEAD_LETTER, ENVELOPE, UPSERT, DeadLetter, ParentReference, SalesforceUpsert, \
    StripeEventEnvelope


def _fields(schema_file: str) -> dict[str, Any]:
    raw = json.loads((SCHEMAS_DIR / schema_file).read_text(encoding="utf-8"))
    return {f["name"]: f["type"] for f in raw["fields"]}


@pytest.mark.parametrize(("typed", "schema_file"), [
    (StripeEventEnvelope, "stripe_event_envelope.avsc"),
    (SalesforceUpsert, "salesforce_upsert.avsc"),
    (DeadLetter, "dead_letter.avsc"),
])
def test_each_typed_record_has_exactly_its_schemas_fields(typed: type, schema_file: str) -> None:
    assert list(typed.__annotations__) == list(_fields(schema_file))


def test_parent_reference_matches_the_nested_record() -> None:
    parents = _fields("salesforce_upsert.avsc")["parents"]["items"]
    assert list(ParentReference.__annotations__) == [f["name"] for f in parents["fields"]]


def test_typed_helpers_round_trip_and_name_the_schema() -> None:
    codec = AvroCodec()
    assert (ENVELOPE.schema, UPSERT.schema, DEAD_LETTER.schema) == (
        "paysync.StripeEventEnvelope", "paysync.SalesforceUpsert", "paysync.DeadLetter")
    letter = dead_letter_record(topic="stripe.events", partition=1, offset=7, stage="ops", error_kind="replayed",
                                error_code="REPLAYED", message="x" * 5000, key=b"k")
    back = codec.decode_record(DEAD_LETTER, codec.encode_record(DEAD_LETTER, letter))
    assert back == {**letter, "message": "x" * 4000}
    upsert: SalesforceUpsert = {
        "sobject": "Account", "external_id_field": "Stripe_Customer_Id__c", "external_id": "cus_1",
        "fields": {"Name": "A", "Active__c": True, "Count__c": 2, "Gone__c": None},
        "parents": [], "source_event_id": None, "version": "1", "origin_topic": None, "origin_partition": None,
        "origin_offset": None, "ingested_at": None,
    }
    assert codec.decode_record(UPSERT, codec.encode_record(UPSERT, upsert)) == upsert
