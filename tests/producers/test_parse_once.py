"""Issue 16: each raw Stripe JSON document is parsed once on its way to Kafka, and what is stored is byte for byte
what the old path (`redact_json_text` over the text, a second parse) stored.

Fails on the old code (main 70b1e54): the receiver parsed every body twice (the handler, then `paysync.redact`),
three times for a thin event; the events poller parsed each listed event again after its page; `redact_parsed`
did not exist; a thin event's dead letter could not be written from an exact (Decimal) parse (and on 757a90e it
was written through floats).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fake_stripe import FakeCursors, FakePublisher, FakeStripe, event
from producer_helpers import SECRET, AckingPublisher, asgi_request, signed_headers

import paysync.redact
import producers.stripe_api
import producers.webhook.app
from paysync.codec import AvroCodec
from paysync.records import ENVELOPE
from paysync.redact import MARKER_KEY, redact_json_text, redact_parsed
from producers.envelope import NotAnEvent, envelope
from producers.pollers.events_poller import EventsPoller
from producers.pollers.listing import HorizonConfig
from producers.stripe_api import StripeApi, StripeApiError, compact_json, outcome_for
from producers.thin_events import ThinEventFetcher
from producers.webhook.app import WebhookApp

CODEC = AvroCodec()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe"
NOW = 1_800_000_000
WEBHOOK_MARK = {"verified": "stripe-signature"}
# exact numbers in every form JSON allows, next to a card that must be cut (so the text is re-serialised)
EXACT = ('{"id":"evt_exact","object":"event","type":"charge.succeeded","livemode":false,"created":1800000000,'
         '"data":{"object":{"id":"ch_exact","object":"charge","amount":1050,"rate":1.234567890123456789,'
         '"e":1E+2,"f":1e400,"g":-0.0,"h":0.10,"big":123456789012345678901234,'
         '"source":{"object":"card","id":"card_1","brand":"visa","last4":"4242","exp_month":12,"fingerprint":"x"}}}}')


class _CountingJson:
    """The `json` module with `loads` counted: stands in for it in the modules a document passes through."""

    def __init__(self) -> None:
        self.loads_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)

    def loads(self, text: str | bytes, **kwargs: Any) -> Any:
        self.loads_calls += 1
        return json.loads(text, **kwargs)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> _CountingJson:
    counter = _CountingJson()
    for module in (producers.webhook.app, paysync.redact, producers.stripe_api):  # thin_events parses nothing
        monkeypatch.setattr(module, "json", counter)
    return counter


def _deliver(app: WebhookApp, text: str) -> tuple[int, dict[str, Any]]:
    body = text.encode()
    return asyncio.run(asgi_request(app, "POST", "/webhooks/stripe", body, signed_headers(text, timestamp=NOW)))


def _app(publisher: AckingPublisher, **kwargs: Any) -> WebhookApp:
    return WebhookApp(publisher=publisher, secrets=[SECRET.encode()], clock=lambda: NOW, **kwargs)


class _Retrieving(FakeStripe):
    """`retrieve` answers a charge (no parse: the object as the real client hands it over)."""

    def get_json(self, path: str, params: dict[str, Any], account: str | None = None,
                 endpoint: str | None = None) -> dict[str, Any]:
        self.calls_made += 1
        if self.calls_made in self.fail_calls:
            raise StripeApiError(endpoint or path, 503, "req_x", outcome_for(503), "unavailable")
        return {"id": path.rsplit("/", 1)[1], "object": "charge", "amount": 500, "currency": "usd",
                "rate": Decimal("0.10"), "created": NOW,
                "payment_method_details": {"type": "card", "card": {"last4": "4242", "exp_year": 2030}}}


POLLED = {"object": {"id": "ch_polled", "object": "charge", "amount": 1050, "rate": 0.1, "e": 1e300,
                     "source": {"object": "card", "id": "card_1", "brand": "visa", "last4": "4242", "exp_month": 12}}}
THIN = json.dumps({"id": "evt_thin_once", "object": "v2.core.event", "type": "v1.charge.updated", "livemode": False,
                   "created": "2026-12-01T20:00:00.000Z", "context": "acct_123",
                   "related_object": {"id": "ch_thin", "type": "charge", "url": "/v1/charges/ch_thin"}})


def test_a_webhook_body_is_parsed_once(parses: _CountingJson) -> None:
    publisher = AckingPublisher()
    app = _app(publisher)
    for n, text in enumerate((EXACT, json.dumps(event(1, NOW)), json.dumps(event(2, NOW)))):
        before = parses.loads_calls
        assert _deliver(app, text)[0] == 200
        assert parses.loads_calls - before == 1, f"webhook {n}"
    assert len(publisher.records) == 3


def test_a_thin_webhook_and_its_fetched_snapshot_are_parsed_once(parses: _CountingJson) -> None:
    publisher = AckingPublisher()
    fetcher = ThinEventFetcher(_Retrieving())
    assert _deliver(_app(publisher, thin_fetcher=fetcher), THIN)[0] == 200
    assert parses.loads_calls == 1
    [(_topic, key, value)] = publisher.records
    record = CODEC.decode(value, "paysync.StripeEventEnvelope")
    assert key == "ch_thin" and record["event_id"] == "evt_thin_once" and not record["thin"]
    stored = json.loads(record["raw_event"])
    assert stored[MARKER_KEY] == {"rules": 1, "verified": "stripe-signature"} and '"rate":0.10' in record["raw_event"]
    assert "exp_year" not in record["raw_event"]


class _Server:
    """Stands in for the HTTP client under the real `StripeApi.get_json`: answers `fake`'s list pages as JSON."""

    def __init__(self, fake: FakeStripe) -> None:
        self.fake, self.pages = fake, 0

    def raw_request(self, method: str, path: str, **query: Any) -> SimpleNamespace:
        self.pages += 1
        query.pop("stripe_account", None)
        return SimpleNamespace(body=json.dumps(FakeStripe.get_json(self.fake, path, query)))


class _ParsingStripe(FakeStripe):
    get_json = StripeApi.get_json  # the production parse of each page


def test_a_polled_page_is_parsed_once_and_its_events_not_again(parses: _CountingJson) -> None:
    api = _ParsingStripe(now=NOW)
    server = _Server(api)
    api._client = server  # type: ignore[assignment]
    for n in range(5):
        api.add("/v1/events", event(n, NOW - 100 + n), NOW - 100 + n)
    api.add("/v1/events", {**event(9, NOW - 50), "data": POLLED}, NOW - 50)
    pub = FakePublisher()
    horizon = HorizonConfig(horizon_s=600, deep_every_s=300, initial_lookback_s=3600)
    poller = EventsPoller(api, pub, FakeCursors(), horizon=horizon,  # type: ignore[arg-type]
                          types=(("charge.succeeded",),))
    poller.poll_once(now=NOW)
    assert len(pub.records) == 6 and server.pages >= 1
    assert parses.loads_calls == server.pages  # one parse per page, none per event
    stored = {r["event_id"]: r["raw_event"] for r in (CODEC.decode(v, "paysync.StripeEventEnvelope")
                                                      for _t, _k, v in pub.records)}
    listed = compact_json(json.loads(json.dumps(api.entries["/v1/events"][5].obj), parse_float=Decimal))
    assert stored["evt_00000009"] == redact_json_text(listed, {"verified": "stripe-api"})
    assert "exp_month" not in stored["evt_00000009"]


def _fixture_texts() -> Iterator[tuple[str, str]]:
    for path in sorted(FIXTURES.rglob("*.json")):
        yield str(path.relative_to(FIXTURES)), path.read_text()
    yield "EXACT", EXACT


def _as_event(name: str, text: str) -> str:
    """`text` itself when it is an event, else an event whose `data.object` is `text` spliced in as written."""
    doc = json.loads(text)
    if isinstance(doc, dict) and doc.get("object") == "event":
        return text
    return ('{"id":"evt_fixture","object":"event","type":"fixture.' + name.replace("/", ".") + '","livemode":false,'
            '"created":1800000000,"data":{"object":' + text + "}}")


def test_redact_parsed_is_redact_json_text_over_every_fixture() -> None:
    changed = 0
    for name, text in _fixture_texts():
        parsed = json.loads(text, parse_float=Decimal)
        for mark in (None, WEBHOOK_MARK):
            assert redact_parsed(parsed, text, mark) == redact_json_text(text, mark), name
        assert json.loads(text, parse_float=Decimal) == parsed, f"{name}: the parse was changed"
        changed += redact_json_text(text) != text
        if name == "EXACT":  # a poller never lists it: orjson (compact_json) refuses integers beyond 64 bits
            continue
        compact = compact_json(parsed)  # what a poller lists
        assert redact_parsed(parsed, compact, WEBHOOK_MARK) == redact_json_text(compact, WEBHOOK_MARK), name
    assert changed >= 20  # the fixtures do carry card and bank details: the re-serialised path is exercised


def test_the_receiver_stores_every_fixture_as_the_old_path_did() -> None:
    """Each fixture (an object wrapped in an event as written) through the receiver: the same answer and the same
    record, `raw_event` byte for byte `redact_json_text(body)`, as the old path (float parse + `redact_json_text`)."""
    publisher = AckingPublisher()
    app = _app(publisher)
    accepted = redacted = 0
    for name, fixture in _fixture_texts():
        text = _as_event(name, fixture)
        try:
            _key, expected = envelope(json.loads(text), text, "webhook", NOW * 1000)
        except NotAnEvent:
            assert _deliver(app, text)[0] == 400, name
            continue
        assert _deliver(app, text)[0] == 200, name
        record = CODEC.decode(publisher.records[-1][2], "paysync.StripeEventEnvelope")
        assert record["raw_event"] == redact_json_text(text, WEBHOOK_MARK), name
        assert record == CODEC.decode(CODEC.encode_record(ENVELOPE, expected), "paysync.StripeEventEnvelope"), name
        accepted += 1
        redacted += record["raw_event"] != text
    assert accepted >= 80 and redacted >= 20  # 84 and 22 with the fixtures of 2026-12-01
    stored = json.loads(CODEC.decode(publisher.records[-1][2], "paysync.StripeEventEnvelope")["raw_event"],
                        parse_float=Decimal)  # the last is EXACT: its numbers as written
    assert '"rate":1.234567890123456789' in redact_json_text(EXACT) and stored["data"]["object"]["h"] == Decimal("0.10")


def test_too_deep_is_refused_by_the_exact_path_as_before() -> None:
    deep = '{"id":"evt_1","object":"event","type":"x","livemode":false,"created":1,"data":{"object":' \
           '{"object":"charge","id":"ch_1","metadata":' + "[" * 900 + "]" * 900 + "}}}"
    with pytest.raises(NotAnEvent):
        envelope(json.loads(deep, parse_float=Decimal), deep, "webhook", 1, exact=True)


def test_a_thin_dead_letter_from_an_exact_parse_keeps_its_numbers_exact() -> None:
    """The receiver hands the fetcher its one (Decimal) parse; the dead letter writes those numbers as they were
    sent, never through a float (on 757a90e it kept `json.dumps` of a float parse: 0.10 became 0.1, digits of
    1.234567890123456789 were lost, a 24-digit integer was fine)."""
    text = THIN[:-1] + (', "reason": {"score": 0.10, "rate": 1.234567890123456789, "e": 1E+300,'
                        ' "huge": 123456789012345678901234}}')
    api = _Retrieving()
    api.fail_calls = {1}
    _topic, _key, value = ThinEventFetcher(api).resolve(
        json.loads(text, parse_float=Decimal), "webhook", 1)
    kept = CODEC.decode(value, "paysync.DeadLetter")["original_value"]
    assert json.loads(kept, parse_float=Decimal) == json.loads(text, parse_float=Decimal)
    for number in (b"0.10", b"1.234567890123456789", b"1E+300", b"123456789012345678901234"):
        assert number in kept


def _fixture_balance_transactions() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every balance transaction object in the fixtures (wherever it sits), parsed exactly."""
    def walk(value: Any) -> Iterator[dict[str, Any]]:
        if isinstance(value, dict):
            if value.get("object") == "balance_transaction" and isinstance(value.get("id"), str):
                yield value
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    for name, text in _fixture_texts():
        for n, txn in enumerate(walk(json.loads(text, parse_float=Decimal))):
            yield f"{name}#{n}", txn
    # as the pollers list them (`expand[]=data.source`): a whole charge, card details to cut, an exact rate
    yield "EXPANDED", json.loads(
        '{"id":"txn_exp","object":"balance_transaction","amount":1050,"net":1000,"fee":50,"currency":"eur",'
        '"created":1800000000,"type":"charge","exchange_rate":1.234567890123456789,"source":'
        + json.dumps({k: v for k, v in json.loads(EXACT)["data"]["object"].items() if k != "big"}) + "}",
        parse_float=Decimal)  # (compact_json, as a page's objects go, writes 64-bit integers only)


def test_a_listed_balance_transaction_is_stored_as_the_old_path_did_without_a_parse(parses: _CountingJson) -> None:
    """The balance poller and the backfill pass a page's object and its compact JSON: `exact=True` redacts the
    object itself, and the record (its `raw` above all) is what redacting the text again gave."""
    from producers.balance_records import balance_record

    seen = 0
    for name, txn in _fixture_balance_transactions():
        if not all(k in txn for k in ("amount", "net", "currency", "created", "type")):
            continue
        raw = compact_json(txn)
        args: dict[str, Any] = {"source": "poll", "account": None, "api_version": "2026-10-28", "received_at_ms": 1}
        expected = balance_record(txn, raw, **args)
        before = parses.loads_calls
        assert balance_record(txn, raw, **args, exact=True) == expected, name
        assert parses.loads_calls == before, f"{name}: parsed again"
        stored = expected[1]["raw"]
        assert name != "EXPANDED" or "exp_month" not in stored and "1.234567890123456789" in stored
        seen += 1
    assert seen >= 5  # the fixtures' balance transactions and the expanded one
