"""paysync.redact over the real Stripe payloads of tests/fixtures/stripe: card and bank details cut to brand and
last4, card numbers / IBANs / secrets in free text replaced, and every mapping giving the same upserts as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.mapping import SUPPORTED_OBJECT_TYPES, map_object
from paysync.paths import REPO_ROOT
from paysync.redact import (
    DROPPED_KEYS, INSTRUMENT_OBJECTS, KEPT_ON_INSTRUMENT, MARKER_KEY, REDACTED_IBAN, REDACTED_SECRET, RedactionError,
    iban_ok, redact, redact_json_text, redact_text,
)
from producers.envelope import NotAnEvent, envelope

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "stripe"
CFG = MappingConfig()


def _documents() -> list[tuple[str, Any]]:
    out = []
    for path in sorted(FIXTURES.rglob("*.json")):
        if "stripe-cli-triggers" in path.parts:  # recipes, not payloads
            continue
        out.append((str(path.relative_to(FIXTURES)), json.loads(path.read_text())))
    return out


DOCUMENTS = _documents()


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _objects(doc: Any) -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """(object type, object, event type) of every Stripe object a fixture carries at its top."""
    if isinstance(doc, dict) and doc.get("object") == "list":
        for item in doc.get("data") or []:
            yield from _objects(item)
    elif isinstance(doc, dict) and doc.get("object") == "event":
        obj = (doc.get("data") or {}).get("object")
        if isinstance(obj, dict) and isinstance(obj.get("object"), str):
            yield obj["object"], obj, doc.get("type")
    elif isinstance(doc, dict) and isinstance(doc.get("object"), dict):  # pay-rails: event `data` only
        yield from _objects({"object": "event", "data": doc, "type": None})
    elif isinstance(doc, dict) and isinstance(doc.get("object"), str):
        yield doc["object"], doc, None


def _mapped(object_type: str, obj: dict[str, Any], event_type: str | None) -> Any:
    meta = EventMeta("evt_redact", event_type, int(obj.get("created") or 1), None, False, "1::evt_redact")
    try:
        return map_object(object_type, obj, meta, CFG)
    except MappingError as exc:
        return ("MappingError", exc.code)


def test_fixtures_hold_what_must_go() -> None:
    """The real payloads do carry expiry, fingerprints, routing numbers and wallets (so the checks below bite)."""
    keys = {path.rsplit(".", 1)[-1] for _, doc in DOCUMENTS for path, _ in _walk(doc)}
    assert {"exp_month", "exp_year", "fingerprint", "routing_number", "dynamic_last4", "network_token"} <= keys


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_no_card_or_bank_detail_survives(name: str, doc: Any) -> None:
    redacted, _ = redact(doc)
    for path, value in _walk(redacted):
        assert path.rsplit(".", 1)[-1] not in DROPPED_KEYS, f"{name}: {path} kept"
        if isinstance(value, dict) and str(value.get("object")) in INSTRUMENT_OBJECTS:
            extra = set(value) - KEPT_ON_INSTRUMENT - {value.get("type")}
            assert not extra, f"{name}: {path} keeps {sorted(extra)}"
        if path.endswith(".payment_method_details") and isinstance(value, dict):
            for method, entry in value.items():
                assert method == "type" or entry is None or set(entry) <= {"brand", "last4"}, f"{name}: {path}"


def test_every_mapping_maps_the_redacted_payload_exactly_as_before() -> None:
    compared = 0
    for name, doc in DOCUMENTS:
        redacted, _ = redact(doc)
        for (object_type, obj, event_type), (_, safe, _) in zip(_objects(doc), _objects(redacted)):
            if object_type not in SUPPORTED_OBJECT_TYPES:
                continue
            assert _mapped(object_type, safe, event_type) == _mapped(object_type, obj, event_type), name
            compared += 1
    assert compared >= 60


def test_a_charge_keeps_brand_and_last4_only() -> None:
    doc = json.loads((FIXTURES / "stripe-ruby-mock" / "charge.succeeded.json").read_text())
    card = doc["data"]["object"]["payment_method_details"]["card"]
    assert {"exp_month", "fingerprint", "checks"} <= set(card)
    redacted, changes = redact(doc)
    assert redacted["data"]["object"]["payment_method_details"] == {
        "card": {"brand": card["brand"], "last4": card["last4"]}, "type": "card"}
    assert changes > 0 and doc["data"]["object"]["payment_method_details"]["card"] is card  # input untouched
    old_source = {"id": "card_1", "object": "card", "brand": "Visa", "last4": "4242", "exp_month": 8,
                  "exp_year": 2030, "fingerprint": "fpX", "name": "J Doe", "address_zip": "94107", "cvc_check": "pass"}
    assert redact({"source": old_source})[0]["source"] == {"id": "card_1", "object": "card", "brand": "Visa",
                                                           "last4": "4242"}


def test_wallets_sources_bank_accounts_and_payment_methods() -> None:
    wallet = {"brand": "visa", "last4": "4242", "wallet": {"type": "apple_pay", "dynamic_last4": "9999"},
              "three_d_secure": {"result": "authenticated", "version": "2.2.0"}, "iin": "424242",
              "network_token": {"used": True}}
    bank = {"id": "ba_1", "object": "bank_account", "last4": "6789", "routing_number": "110000000",
            "fingerprint": "fpB", "account_holder_name": "Jane", "bank_name": "STRIPE TEST BANK"}
    pm = {"id": "pm_1", "object": "payment_method", "type": "card", "customer": "cus_1",
          "billing_details": {"address": {"line1": "1 Main"}}, "card": {"brand": "visa", "last4": "4242",
                                                                         "exp_month": 1, "exp_year": 2031}}
    sepa = {"payment_method_details": {"type": "sepa_debit", "sepa_debit": {
        "last4": "3000", "bank_code": "37040044", "fingerprint": "fpS", "mandate": "mandate_1"}}}
    transfer = {"financial_addresses": [{"type": "iban", "iban": {"iban": "DE89370400440532013000", "bic": "X"}},
                                        {"type": "aba", "aba": {"account_number": "0001234", "routing_number": "1"}}]}
    doc = {"payment_method_details": {"card": wallet, "type": "card"}, "sources": {"data": [bank]},
           "last_payment_error": {"payment_method": pm}, "latest_charge": sepa,
           "next_action": {"display_bank_transfer_instructions": transfer}}
    out, _ = redact(doc)
    assert out["payment_method_details"]["card"] == {"brand": "visa", "last4": "4242"}
    assert out["sources"]["data"][0] == {"id": "ba_1", "object": "bank_account", "last4": "6789"}
    assert out["last_payment_error"]["payment_method"] == {"id": "pm_1", "object": "payment_method", "type": "card",
                                                           "customer": "cus_1",
                                                           "card": {"brand": "visa", "last4": "4242"}}
    assert out["latest_charge"]["payment_method_details"] == {"type": "sepa_debit", "sepa_debit": {"last4": "3000"}}
    assert "DE89370400440532013000" not in json.dumps(out) and "0001234" not in json.dumps(out)


@pytest.mark.parametrize("pan", ["4242424242424242", "4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005"])
def test_card_numbers_ibans_and_secrets_in_free_text(pan: str) -> None:
    doc = {"metadata": {"note": f"card {pan} exp 12/30", pan: "x"}, "description": "IBAN GB82 WEST 1234 5698 7654 32",
           "statement_descriptor": "key sk_live_51Habc123 and whsec_abcDEF123="}
    out, changes = redact(doc)
    text = json.dumps(out)
    assert pan not in text and pan.replace(" ", "").replace("-", "") not in text.replace(" ", "")
    assert "[REDACTED-PAN]" in out["metadata"]["note"] and changes == 4
    assert out["description"] == f"IBAN {REDACTED_IBAN}"
    assert out["statement_descriptor"] == f"key {REDACTED_SECRET} and {REDACTED_SECRET}"


def test_ids_and_ordinary_values_are_left_alone() -> None:
    doc = {"id": "ch_4242424242424242", "customer": "cus_00000000000000", "number": "ABC-0001",
           "metadata": {"order": "12345", "sf": "0065g00000ABCDEFGH", "ref": "DE00 not an iban"},
           "payment_method_options": {"card": {"request_three_d_secure": "automatic"}}, "amount": 4242424242424242}
    assert redact(doc) == (doc, 0)
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    assert redact_text("GB82WEST12345698765432") == REDACTED_IBAN


def test_redact_json_text_keeps_clean_text_byte_for_byte_and_numbers_exact() -> None:
    clean = '{"id":"evt_1",  "data": {"object": {"exchange_rate": 1.234567890123456789}}}'
    assert redact_json_text(clean, {"verified": "x"}) is clean
    dirty = '{"id":"evt_1","rate":1.234567890123456789,"big":123456789012345678901234,"card":{"object":"card",' \
            '"last4":"4242","exp_month":1}}'
    out = redact_json_text(dirty, {"verified": "stripe-signature"})
    assert '"rate":1.234567890123456789' in out and "123456789012345678901234" in out
    assert json.loads(out)[MARKER_KEY] == {"rules": 1, "verified": "stripe-signature"}
    assert "exp_month" not in out
    assert redact_json_text("not json 4242424242424242") == "not json [REDACTED-PAN]"


def test_the_envelope_stores_the_redacted_event_and_says_how_it_was_verified() -> None:
    doc = json.loads((FIXTURES / "stripe-ruby-mock" / "charge.succeeded.json").read_text())
    raw = json.dumps(doc)
    _, webhook = envelope(doc, raw, "webhook", 1)
    _, polled = envelope(doc, raw, "poll", 1)
    stored = json.loads(webhook["raw_event"])
    assert "exp_month" not in webhook["raw_event"] and "fingerprint" not in webhook["raw_event"]
    assert stored[MARKER_KEY]["verified"] == "stripe-signature"
    assert json.loads(polled["raw_event"])[MARKER_KEY]["verified"] == "stripe-api"
    assert stored["data"]["object"]["payment_method_details"]["card"]["last4"] == "4242"
    deep = '{"id":"evt_1","object":"event","type":"x","livemode":false,"created":1,"data":{"object":' \
           '{"object":"charge","id":"ch_1","metadata":' + "[" * 900 + "]" * 900 + "}}}"
    with pytest.raises(NotAnEvent):
        envelope(json.loads(deep), deep, "webhook", 1)
    with pytest.raises(RedactionError):
        redact_json_text("[" * 5000 + "]" * 5000)


def test_dead_letters_keep_only_redacted_payloads() -> None:
    """A dead letter of an unredacted envelope (written before redaction, or by anything else) or of raw JSON
    keeps the redacted copy; clean bytes are kept as they are."""
    from paysync.codec import AvroCodec
    from paysync.deadletter import dead_letter_record
    from paysync.records import ENVELOPE

    codec = AvroCodec()
    doc = json.loads((FIXTURES / "stripe-ruby-mock" / "charge.succeeded.json").read_text())
    _, record = envelope(doc, "{}", "webhook", 1)
    leaky = codec.encode_record(ENVELOPE, {**record, "raw_event": json.dumps(doc)})
    letter = dead_letter_record(topic="stripe.events", partition=0, offset=1, stage="streams", error_kind="x",
                                error_code="X", message="failed on 4242424242424242", value=leaky)
    stored = codec.decode_record(ENVELOPE, letter["original_value"])
    assert "exp_month" not in stored["raw_event"] and "fingerprint" not in stored["raw_event"]
    assert stored["event_id"] == record["event_id"] and letter["message"] == "failed on [REDACTED-PAN]"
    raw_json = json.dumps({"metadata": {"card": "4242 4242 4242 4242"}}).encode()
    assert b"4242 4242" not in (dead_letter_record(topic="t", partition=0, offset=0, stage="producers",
                                                   error_kind="x", error_code="X", message="m",
                                                   value=raw_json)["original_value"] or b"")
    clean = codec.encode_record(ENVELOPE, {**record, "raw_event": '{"id":"evt_1"}'})
    for value in (clean, b"\xc3\x01junk", b"\x00\xff\xfe"):
        assert dead_letter_record(topic="t", partition=0, offset=0, stage="s", error_kind="x", error_code="X",
                                  message="m", value=value)["original_value"] == value
