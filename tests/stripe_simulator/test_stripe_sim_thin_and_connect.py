"""Issue 15: the simulator's event-destination mode (thin events) and Connect accounts joining during a run, checked
with the real `stripe` library 16.1. Fails on the old simulator (6266064^: no `thin_event_share`, no
`accounts_connected_during_run`, `GET /v1/accounts` and `GET /v2/core/events/{id}` answered 404)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from stripe.events import V1ChargeSucceededEventNotification

from emulators.stripe_simulator import EventRecord, ScenarioParams, SimulatorHandle, generate, start_simulator
from emulators.stripe_simulator.thin import RETRIEVE_PATHS

from .receiver import Receiver

SECRET = "whsec_thin_destination_123"
START = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _sim(receiver: Receiver | None = None, **kw: Any) -> SimulatorHandle:
    return start_simulator(seed=9, start_time=int(time.time()) - 86400, webhook_secrets=[SECRET],
                           webhook_url=receiver.url if receiver else None, retry_base=0.05, **kw)


def _client(h: SimulatorHandle, account: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(h.api_key, base_addresses={"api": h.base_url}, max_network_retries=0,
                               stripe_account=account)


def test_thin_share_keeps_the_snapshot_stream_byte_identical_and_draws_its_share() -> None:
    plain = [r.json for r in generate(ScenarioParams(seed=4, events=600, start_time=START))
             if isinstance(r, EventRecord)]
    records = [r for r in generate(ScenarioParams(seed=4, events=600, start_time=START, thin_event_share=0.3))
               if isinstance(r, EventRecord)]
    assert [r.json for r in records] == plain
    thin = [r for r in records if r.thin_json is not None]
    assert 0.2 < len(thin) / len(records) < 0.4
    for r in thin:
        body = json.loads(r.thin_json or "")
        assert list(body) == ["id", "object", "context", "created", "livemode", "reason", "related_object", "type"]
        assert body["object"] == "v2.core.event" and body["type"] == f"v1.{r.type}"
        assert body["id"].startswith("evt_test_65") and body["id"] != r.id
        assert body["context"] == r.account and body["created"].endswith(".000Z")
        assert body["related_object"] == {"id": r.object_id, "type": r.object_type,
                                          "url": f"{RETRIEVE_PATHS[r.object_type]}/{r.object_id}"}


def test_thin_events_parse_verify_and_fetch_through_the_stripe_library(receiver: Receiver) -> None:
    with _sim(receiver) as h:
        status = h.generate(events=300, thin_event_share=1.0, connected_accounts=2)
        assert status["deliveries"]["failed"] == 0 and len(receiver.deliveries) >= status["events_generated"]
        client = _client(h)
        notes = [client.parse_event_notification(b, s, SECRET) for b, s in receiver.deliveries]  # signatures verified
        assert all(n.object == "v2.core.event" and n.id.startswith("evt_test_") for n in notes)
        assert any(isinstance(n, V1ChargeSucceededEventNotification) for n in notes)
        # Delivery order varies from run to run, the events do not: the one fetched of each kind of each side (the
        # platform's own, context None; a connected account's) is the one of the smallest id, never the first come
        related = sorted((n for n in notes if getattr(n, "related_object", None) is not None), key=lambda n: n.id)
        deleted = {n.related_object.id for n in related if n.type.endswith(".deleted")}  # a draft invoice: gone
        chosen: dict[tuple[str, bool], Any] = {}
        for note in related:
            if note.related_object.id not in deleted:
                chosen.setdefault((note.related_object.type, note.context is not None), note)
        kinds = {"charge", "payment_intent", "customer", "invoice", "payout"}
        assert {(kind, connected) for kind in kinds for connected in (False, True)} <= chosen.keys()
        for (kind, connected), note in sorted(chosen.items()):
            # `note.context` is a stripe.StripeContext, not a str: a request on its account sends it as
            # `stripe_context` (header Stripe-Context), as the library's own fetches below do
            assert isinstance(note.context, stripe.StripeContext) if connected else note.context is None
            fetched = note.fetch_related_object()  # GET related_object.url, Stripe-Context = context
            assert fetched is not None and fetched.id == note.related_object.id and fetched.object == kind
            event = note.fetch_event()  # GET /v2/core/events/{id}
            assert event.id == note.id and event.snapshot_event.startswith("evt_")
            snapshot = client.v1.events.retrieve(event.snapshot_event, options={"stripe_context": note.context})
            assert snapshot.type == note.type[3:]
            assert snapshot.to_dict().get("account") == (str(note.context) if connected else None)
            if connected:  # a connected account's event is not the platform's
                with pytest.raises(stripe.InvalidRequestError):
                    client.v1.events.retrieve(event.snapshot_event)
        gone = next(n for n in related if n.type == "v1.invoice.deleted")
        with pytest.raises(stripe.InvalidRequestError):  # a deleted draft is retrieved by no one
            gone.fetch_related_object()
        with pytest.raises(stripe.InvalidRequestError):
            client.raw_request("get", "/v2/core/events/evt_test_65nosuchevent")


def test_an_account_connected_mid_run_is_listed_announced_and_has_traffic(receiver: Receiver) -> None:
    with _sim(receiver) as h:
        before = [a.id for a in _client(h).v1.accounts.list()]
        assert before == []  # nothing generated yet: no account
        status = h.generate(events=600, connected_accounts=2, accounts_connected_during_run=1, connect_at=0.5,
                            delay_scale=0.01)
        listed = _client(h).v1.accounts.list({"limit": 100}).data
        assert len(listed) == 3 and all(a.object == "account" and a.type == "standard" for a in listed)
        new = listed[0]  # newest first
        assert new.created > listed[1].created and new.created > int(time.time()) - 86400
        events = list(_client(h, new.id).v1.events.list({"limit": 100}).auto_paging_iter())
        assert events[-1].type == "account.application.authorized"  # its first event: nothing before it
        assert events[-1].account == new.id and events[-1].data.object.object == "application"
        assert len(events) > 10, "the new account has traffic of its own"
        platform = {e.type for e in _client(h).v1.events.list({"limit": 100}).auto_paging_iter()}
        assert "account.application.authorized" not in platform  # a Connect event, the account's own
        delivered = [json.loads(b) for b, _ in receiver.deliveries]
        assert any(e["type"] == "account.application.authorized" and e["account"] == new.id for e in delivered)
        assert new.id in status["connected_accounts"]


def test_a_deauthorized_account_is_no_longer_listed_nor_readable() -> None:
    with _sim() as h:
        h.generate(events=200, connected_accounts=2, accounts_deauthorized_at_end=1, delay_scale=0.01)
        listed = [a.id for a in _client(h).v1.accounts.list()]
        assert len(listed) == 1
        gone = next(a for a in h.status()["connected_accounts"] if a not in listed)
        with pytest.raises(stripe.PermissionError) as err:
            _client(h, gone).v1.events.list()
        assert err.value.http_status == 403 and (err.value.json_body or {})["error"]["code"] == "account_invalid"
        assert "Application access may have been revoked" in str(err.value)
        with pytest.raises(stripe.InvalidRequestError):
            _client(h).v1.accounts.retrieve(gone)
        assert _client(h, listed[0]).v1.events.list().data  # the one still connected is readable


def test_an_event_destination_with_thin_payload_gets_the_thin_events_it_enabled(receiver: Receiver) -> None:
    with _sim() as h:  # no snapshot webhook: only the destination is sent anything
        client = _client(h)
        wanted = ["v1.charge.succeeded", "v1.payout.paid"]
        created = client.raw_request("post", "/v2/core/event_destinations", name="paysync", type="webhook_endpoint",
                                     event_payload="thin", enabled_events=wanted,
                                     events_from=["self", "other_accounts"], webhook_endpoint={"url": receiver.url},
                                     include=["webhook_endpoint.signing_secret"])
        destination = client.deserialize(created, api_mode="V2")
        assert destination.object == "v2.core.event_destination" and destination.event_payload == "thin"
        secret = destination.webhook_endpoint.signing_secret
        assert secret.startswith("whsec_")
        shown = client.deserialize(client.raw_request("get", f"/v2/core/event_destinations/{destination.id}"),
                                   api_mode="V2")
        assert shown.webhook_endpoint.signing_secret is None  # only when included
        with pytest.raises(stripe.InvalidRequestError):  # a name the account never sends
            client.raw_request("post", "/v2/core/event_destinations", name="x", type="webhook_endpoint",
                               event_payload="thin", enabled_events=["v1.charge.exploded"],
                               webhook_endpoint={"url": receiver.url})
        status = h.generate(events=300, delay_scale=0.01)
        notes = [client.parse_event_notification(b, s, secret) for b, s in receiver.deliveries]
        assert notes and {n.type for n in notes} == set(wanted)
        assert any(n.context for n in notes) and any(n.context is None for n in notes)  # self and other accounts
        succeeded = [e for a in [None, *status["connected_accounts"]]
                     for e in _client(h, a).v1.events.list({"type": "charge.succeeded", "limit": 100}).data]
        assert len({n.related_object.id for n in notes if n.type == "v1.charge.succeeded"}) == len(succeeded)
        assert notes[0].fetch_event().snapshot_event.startswith("evt_")
        assert status["destinations"][destination.id]["failed"] == 0
