"""Raw payloads kept safe (issue 18): after a pipeline run with card- and bank-bearing events (through the
receiver, the pollers' simulated traffic, and one record written unredacted by an older producer), EVERY record
of EVERY paysync topic, every component log and every Salesforce record is scanned: no card expiry, fingerprint,
full card number, IBAN / account number or secret anywhere — `stripe.events` and `paysync.dlq` included.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adversarial_helpers import fresh, read_raw, real_events
from confluent_kafka.admin import AdminClient
from pipeline_probe import Salesforce, card_numbers, dead_letters, emulator_texts, post_event, produce, wait_until

from ops.pipeline import WEBHOOK_SECRETS, LocalPipeline, PipelineOptions
from paysync.codec import AvroCodec
from paysync.records import ENVELOPE, StripeEventEnvelope
from paysync.topics import STRIPE_EVENTS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RUN = uuid.uuid4().hex[:12]
STRIPE_KEY = f"sk_test_scan{RUN}KEY"
SF_CLIENT_SECRET = f"scan-client-secret-{RUN}"
SF_PASSWORD = f"scan-password-{RUN}"
SECRETS = (*WEBHOOK_SECRETS, STRIPE_KEY, SF_CLIENT_SECRET, SF_PASSWORD)
TYPED_SECRET = f"sk_live_51Typed{RUN}"  # a secret a merchant pasted into metadata

PANS = ("4242424242424242", "5555 5555 5555 4444", "378282246310005", "6011-1111-1111-1117")
FINGERPRINT = f"fpScan{RUN}"
IBAN = "DE89370400440532013000"
ACCOUNT_NUMBER = f"98{int(RUN, 16) % 10**10:010d}"
ROUTING_NUMBER = "110000000"

FINDINGS = [
    ("card expiry", re.compile(r"exp_(?:month|year)")),
    ("fingerprint", re.compile(r'"fingerprint"\s*:|' + FINGERPRINT)),
    ("bank account field", re.compile(r'"(?:account_number|routing_number|iban)"\s*:')),
    ("account number", re.compile(ACCOUNT_NUMBER)),
    ("secret key", re.compile(r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{6,}|whsec_[0-9A-Za-z]{6,}")),
]
_IBAN = re.compile(r"(?<![0-9A-Za-z])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![0-9A-Za-z])")


def _iban_ok(candidate: str) -> bool:
    text = candidate.replace(" ", "")
    return int("".join(str(int(c, 36)) for c in text[4:] + text[:4])) % 97 == 1


def scan(where: str, text: str) -> list[str]:
    """What in `text` must not be stored: each finding names the place and the kind, never the value."""
    found = [f"{where}: {kind}" for kind, pattern in FINDINGS if pattern.search(text)]
    found += [f"{where}: secret {s[:10]}…" for s in SECRETS if s in text]
    found += [f"{where}: card number …{n[-4:]}" for n in card_numbers(text)]
    found += [f"{where}: IBAN" for m in _IBAN.finditer(text) if _iban_ok(m.group(0))]
    return found


def _card(**more: Any) -> dict[str, Any]:
    return {"brand": "visa", "last4": "4242", "exp_month": 11, "exp_year": 2031, "fingerprint": FINGERPRINT,
            "funding": "credit", "country": "US", "iin": "424242", "network_token": {"used": True},
            "three_d_secure": {"result": "authenticated", "version": "2.2.0"},
            "wallet": {"type": "apple_pay", "dynamic_last4": "0005"}, **more}


def _leaky_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A charge, a customer and a payment intent carrying every kind of card and bank detail Stripe sends."""
    charge = fresh(next(e for e in events if e["type"] == "charge.succeeded"))
    charge["data"]["object"].update(
        description=f"paid with card {PANS[0]} exp 11/31", failure_message=f"declined {PANS[1]}",
        metadata={"card_number": PANS[1], "note": f"amex {PANS[2]}", "iban": IBAN, "key": TYPED_SECRET},
        payment_method_details={"type": "card", "card": _card()},
        billing_details={"name": f"Holder {PANS[3]}", "address": {"line1": "1 Main St"}})
    customer = fresh(next(e for e in events if e["type"] == "customer.created"))
    customer["data"]["object"].update(name=f"Card {PANS[2]} Holder", sources={"object": "list", "data": [
        {"id": "card_scan1", "object": "card", **_card(), "address_zip": "94107", "cvc_check": "pass"},
        {"id": "ba_scan1", "object": "bank_account", "last4": ACCOUNT_NUMBER[-4:], "routing_number": ROUTING_NUMBER,
         "fingerprint": FINGERPRINT, "account_holder_name": "Jane Holder", "bank_name": "STRIPE TEST BANK"}]})
    intent = fresh(next(e for e in events if e["type"] == "payment_intent.succeeded"))
    intent["data"]["object"].update(
        last_payment_error={"code": "card_declined", "payment_method": {
            "id": "pm_scan1", "object": "payment_method", "type": "card", "card": _card()}},
        next_action={"type": "display_bank_transfer_instructions", "display_bank_transfer_instructions": {
            "financial_addresses": [{"type": "iban", "iban": {"iban": IBAN, "bic": "COBADEFFXXX"}},
                                    {"type": "aba", "aba": {"account_number": ACCOUNT_NUMBER,
                                                            "routing_number": ROUTING_NUMBER}}]}})
    return [charge, customer, intent]


def _old_producer_record(events: list[dict[str, Any]]) -> tuple[str, bytes]:
    """An unredacted envelope as a producer before issue 18 wrote it, of a charge the mapping refuses."""
    event = fresh(next(e for e in events if e["type"] == "charge.succeeded"))
    event["data"]["object"].update(amount="not an amount", payment_method_details={"type": "card", "card": _card()})
    obj = event["data"]["object"]
    record: StripeEventEnvelope = {
        "event_id": event["id"], "event_type": event["type"], "created": event["created"], "api_version": None,
        "livemode": False, "account": None, "source": "webhook", "received_at": int(time.time() * 1000),
        "object_id": obj["id"], "object_type": "charge", "thin": False, "raw_event": json.dumps(event)}
    return obj["id"], AvroCodec().encode_record(ENVELOPE, record)


@pytest.fixture(scope="module")
def pipe(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    options = PipelineOptions(
        workdir=tmp_path_factory.mktemp("scan") / "pipeline", bootstrap=kafka_bootstrap, partitions=2,
        poll_interval_s=2.0, simulator_knobs={"api_key": STRIPE_KEY},
        emulator_knobs={"client_secret": SF_CLIENT_SECRET},
        extra_env={"PAYSYNC_SALESFORCE_CLIENT_SECRET": SF_CLIENT_SECRET, "PAYSYNC_SALESFORCE_PASSWORD": SF_PASSWORD,
                   "PAYSYNC_SALESFORCE_USERNAME": "scan@paysync.example"},
    )
    pipeline = LocalPipeline(options)
    try:
        pipeline.start()
        pipeline.drive(30, 30.0, delay_scale=0.001, connected_accounts=1)
        yield pipeline
    finally:
        pipeline.stop()


def _paysync_topics(pipe: LocalPipeline) -> list[str]:
    names = AdminClient({"bootstrap.servers": pipe.bootstrap}).list_topics(timeout=10).topics
    return sorted(n for n in names if n.startswith(pipe.prefix))


def test_no_card_bank_or_secret_data_is_stored_anywhere(pipe: LocalPipeline) -> None:
    events = real_events()
    sf = Salesforce(pipe)
    charge, customer, intent = _leaky_events(events)
    for event in (charge, customer, intent):
        post_event(pipe, event)
    old_key, old_value = _old_producer_record(events)
    [old_offset] = produce(pipe.bootstrap, pipe.topic(STRIPE_EVENTS.name), [(old_key.encode(), old_value)])

    charge_id = charge["data"]["object"]["id"]
    row = wait_until(lambda: sf.one("SELECT Card_Brand__c, Card_Last4__c FROM Stripe_Payment__c "
                                    f"WHERE Stripe_Charge_Id__c = '{charge_id}'"), 60, "the card-bearing charge")
    assert row["Card_Brand__c"] == "visa" and row["Card_Last4__c"] == "4242"  # what the mapping needs survives
    cus_id = customer["data"]["object"]["id"]
    wait_until(lambda: sf.one(f"SELECT Id FROM Account WHERE Stripe_Customer_Id__c = '{cus_id}'"), 60, "the customer")
    wait_until(lambda: [d for d in dead_letters(pipe) if d["object_id"] == old_key], 60, "the old record's letter")
    wait_until(lambda: pipe.stripe.status().get("done"), 60, "the simulated traffic")
    wait_until(lambda: pipe.lags()["sink"] == 0 and pipe.lags()["streams"] == 0, 90, "both stages caught up")

    findings: list[str] = []
    scanned: dict[str, int] = {}
    topics = _paysync_topics(pipe)
    assert {pipe.topic(STRIPE_EVENTS.name), pipe.topic("paysync.dlq")} <= set(topics)
    for topic in topics:
        for m in read_raw(pipe.bootstrap, topic):
            if topic == pipe.topic(STRIPE_EVENTS.name) and m.offset() == old_offset and m.key() == old_key.encode():
                continue  # the record this test wrote unredacted on purpose: its dead letter is scanned below
            text = (m.key() or b"").decode("utf-8", "replace") + "\n" + (m.value() or b"").decode("utf-8", "replace")
            findings += scan(f"{topic.removeprefix(pipe.prefix)}@{m.partition()}:{m.offset()}", text)
            scanned[topic] = scanned.get(topic, 0) + 1
    assert scanned.get(pipe.topic(STRIPE_EVENTS.name), 0) >= 20 and scanned.get(pipe.topic("paysync.dlq"), 0) >= 1
    logs = sorted(Path(pipe.o.workdir, "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"webhook", "stream0", "sink", "poll"}
    for log in logs:
        findings += scan(f"log {log.name}", log.read_text(encoding="utf-8", errors="replace"))
    for text in emulator_texts(pipe):
        findings += scan("Salesforce", text)
    assert not findings, sorted(set(findings))
