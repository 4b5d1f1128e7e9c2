"""Every mapping against every real Stripe payload of tests/fixtures/stripe; what all types share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core_helpers import CFG, KNOWN_MALFORMED, Payload, map_payload, no_float, one, object_type_of
from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.mapping import SUPPORTED_OBJECT_TYPES, map_object
from paysync.paths import REPO_ROOT


def test_every_supported_payload_maps_to_valid_upserts(payloads: list[Payload], check: Any) -> None:
    mapped = 0
    for p in payloads:
        object_type = object_type_of(p)
        if object_type not in SUPPORTED_OBJECT_TYPES:
            continue
        if p.file in KNOWN_MALFORMED:
            with pytest.raises(MappingError) as info:
                map_payload(p, object_type)
            assert info.value.code == KNOWN_MALFORMED[p.file]
            continue
        for cfg in (CFG, MappingConfig(customer_target="Contact", multi_currency=True,
                                       legal_entities={"platform": "Paysync Ltd"})):
            upserts = map_payload(p, object_type, cfg)
            check(upserts)
            no_float(upserts)
            for u in upserts:
                assert u["version"] == p.meta(object_type).version
                assert u["source_event_id"] == p.event_id
        mapped += 1
    assert mapped >= 50


def test_common_fields_and_legal_entity(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/payout.paid.json")
    meta = EventMeta(p.event_id, p.event_type, p.created, "acct_123", True, p.meta("payout").version)
    cfg = MappingConfig(legal_entities={"acct_123": "Paysync GmbH"}, multi_currency=True)
    fields = map_object("payout", p.obj, meta, cfg)[0]["fields"]
    assert fields["Stripe_Account_Id__c"] == "acct_123" and fields["Legal_Entity__c"] == "Paysync GmbH"
    assert fields["Livemode__c"] is True and fields["CurrencyIsoCode"] == "USD"
    assert fields["Last_Stripe_Event_Id__c"] == p.event_id
    assert fields["Last_Stripe_Event_At__c"].endswith(".000Z")
    platform = map_object("payout", p.obj, p.meta("payout"), cfg)[0]["fields"]
    assert "Legal_Entity__c" not in platform and "CurrencyIsoCode" in platform


@pytest.mark.parametrize(
    ("object_type", "file", "change", "code"),
    [
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"id": None}, "MISSING_FIELD"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"amount": 10.5}, "BAD_AMOUNT"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"amount": "1000"}, "BAD_AMOUNT"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"currency": "zzz"}, "BAD_CURRENCY"),
        ("charge", "stripe-ruby-mock/charge.succeeded.json", {"status": "exploded"}, "UNKNOWN_STATUS"),
        ("refund", "stripe-openapi/objects/refund.json", {"amount": True}, "BAD_AMOUNT"),
        ("dispute", "stripe-openapi/objects/dispute.json", {"currency": None}, "BAD_CURRENCY"),
        ("invoice", "stripe-openapi/objects/invoice.json", {"amount_due": 1.0}, "BAD_AMOUNT"),
        ("payout", "stripe-openapi/objects/payout.json", {"object": "charge"}, "BAD_OBJECT"),
        ("customer", "stripe-openapi/objects/customer.json", {"id": ""}, "MISSING_FIELD"),
        ("payment_intent", "stripe-openapi/objects/payment_intent.json", {"amount": None}, "BAD_AMOUNT"),
    ],
)
def test_malformed_objects_raise_mapping_error(
    payloads: list[Payload], object_type: str, file: str, change: dict[str, Any], code: str
) -> None:
    p = one(payloads, file)
    with pytest.raises(MappingError) as info:
        map_object(object_type, dict(p.obj, **change), p.meta(object_type), CFG)
    assert info.value.code == code


def test_unsupported_type_is_a_mapping_error() -> None:
    meta = EventMeta("evt_1", "balance.available", 1, None, False, "1::evt_1")
    with pytest.raises(MappingError) as info:
        map_object("balance", {"object": "balance"}, meta, CFG)
    assert info.value.code == "UNSUPPORTED_TYPE"


def test_fixtures_are_the_repository_copy_with_their_sources(stripe_fixtures: Path) -> None:
    assert stripe_fixtures == REPO_ROOT / "tests" / "fixtures" / "stripe"
    sources = (stripe_fixtures / "SOURCES.md").read_text(encoding="utf-8")
    for folder in sorted(p.name for p in stripe_fixtures.iterdir() if p.is_dir()):
        assert f"`{folder}/`" in sources, f"{folder} has no origin in SOURCES.md"
