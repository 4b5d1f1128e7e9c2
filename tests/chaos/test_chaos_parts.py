"""The chaos runner's parts without a pipeline: plans, poison records, the dead-letter match, the webhook tee."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ops.chaos.poison import KINDS, PoisonRecord, missing_poison, poison_value, unexpected_dead_letters
from ops.chaos.scenarios import SCENARIOS, expand, plan
from ops.chaos.tee import WebhookTee
from paysync.codec import AvroCodec, CodecError
from paysync.topics import SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS
from streams.ports import RealMapper
from streams.settings import StreamSettings


def test_all_expands_to_every_scenario_and_unknown_names_are_refused() -> None:
    assert expand(["all"]) == list(SCENARIOS)
    assert expand(["poison", "kill-sink"]) == ["kill-sink", "poison"]
    with pytest.raises(ValueError, match="unknown scenario"):
        expand(["kill-everything"])


def test_plans_are_seeded_and_faults_fall_inside_the_traffic_window() -> None:
    a = plan(["all"], events=3000, rate=100, seed=3)
    assert a == plan(["all"], events=3000, rate=100, seed=3)
    assert a != plan(["all"], events=3000, rate=100, seed=4)
    assert a.private_broker and a.tee and a.stripe_rate_limit > 0
    assert a.emulator_knobs == {"error_503_rate": 0.2, "lock_rate": 0.2, "session_ttl_s": 3}
    assert all(0 <= x.at <= 30 for x in a.actions) and [x.at for x in a.actions] == sorted(x.at for x in a.actions)
    kinds = Counter(x.kind if x.kind != "kill" else x.target for x in a.actions)
    assert kinds["webhook"] == kinds["stream0"] == kinds["sink"] == 5
    assert kinds["broker-outage"] == kinds["api-limit-outage"] == 1
    assert kinds["poison"] == len(KINDS)  # at least one of each kind, else one per thousand events
    assert Counter(x.kind for x in plan(["poison"], 20_000, 500, 1).actions)["poison"] == 20
    kills = sorted(x.at for x in a.actions if x.target == "sink")
    assert min(b - a_ for a_, b in zip(kills, kills[1:])) > 0.5  # one per slot: kills do not bunch
    assert not plan(["kill-sink"], 400, 40, 1).private_broker


def test_each_poison_kind_fails_where_it_should() -> None:
    codec = AvroCodec()
    mapper = RealMapper(StreamSettings().mapping)
    expected_topics = {"events": STRIPE_EVENTS.name, "balance": STRIPE_BALANCE_TRANSACTIONS.name,
                       "upserts": SALESFORCE_UPSERTS.name}
    for n, kind in enumerate(KINDS):
        topic, key, value = poison_value(kind, n, codec)
        assert topic == expected_topics[kind.split("-")[0]] and key
        schema = {STRIPE_EVENTS.name: STRIPE_EVENTS.schema, STRIPE_BALANCE_TRANSACTIONS.name:
                  STRIPE_BALANCE_TRANSACTIONS.schema, SALESFORCE_UPSERTS.name: SALESFORCE_UPSERTS.schema}[topic]
        if kind.endswith(("bad-magic", "truncated")):
            with pytest.raises(CodecError) as err:
                codec.decode(value, schema)
            assert err.value.code in ("BAD_MAGIC", "TRUNCATED")
            continue
        record = codec.decode(value, schema)
        if kind == "upserts-string-too-long":
            assert len(record["fields"]["Type__c"]) > 50  # Text(50) in the data model
        elif kind == "balance-invalid-currency":
            with pytest.raises(Exception) as exc:
                mapper.map_balance_transaction(record)
            assert mapper.is_mapping_error(exc.value)
        else:
            import json

            obj = json.loads(record["raw_event"])["data"]["object"]
            version = mapper.version_of("charge", obj, record["created"], record["event_id"])
            with pytest.raises(Exception) as exc:
                mapper.map_object("charge", obj, {"event_id": record["event_id"], "event_type": record["event_type"],
                                                  "created": record["created"], "account": None, "livemode": False,
                                                  "version": mapper.encode_version(version)})
            assert mapper.is_mapping_error(exc.value)


def test_poison_is_matched_to_dead_letters_by_origin() -> None:
    injected = [PoisonRecord("events-bad-magic", "p.stripe.events", 2, 40),
                PoisonRecord("upserts-bad-magic", "p.salesforce.upserts", 0, 7)]
    dead = [{"topic": "p.stripe.events", "partition": 2, "offset": 40},
            {"topic": "p.salesforce.upserts", "partition": 1, "offset": 7},
            {"topic": "p.stripe.events", "partition": 0, "offset": 3}]
    assert missing_poison(injected, dead) == [injected[1]]
    assert unexpected_dead_letters(injected, dead) == dead[1:]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    got: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append((self.rfile.read(int(self.headers["Content-Length"])), self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe", got
    server.shutdown()
    server.server_close()


def test_tee_delivers_every_webhook_one_to_three_times_unchanged(receiver: tuple[str, list[tuple[bytes, str]]]) -> None:
    url, got = receiver
    tee = WebhookTee(url, seed=1, max_delay_s=0.3).start()
    try:
        with httpx.Client() as client:
            for i in range(60):
                resp = client.post(tee.url, content=f'{{"id": "evt_{i}"}}'.encode(), headers={"Stripe-Signature": f"t=1,v1={i}"})
                assert resp.status_code == 200
        deadline = time.monotonic() + 10
        while tee.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tee.pending() == 0
    finally:
        tee.stop()
    per_event = Counter(body for body, _ in got)
    assert len(per_event) == 60 and set(per_event.values()) == {1, 2, 3}
    import json

    assert all(sig == "t=1,v1=" + json.loads(body)["id"].split("_")[1] for body, sig in got)
    assert sum(per_event.values()) == 60 + tee.extra_sent
    assert Counter(per_event.values()) == Counter({k: v for k, v in tee.copies_histogram.items()})
