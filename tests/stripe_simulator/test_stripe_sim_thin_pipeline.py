"""Issue 15: what the simulator's thin events and late-joining accounts showed about the pipeline's Stripe side
(production code against the live simulator, no Kafka needed).

- A thin `v1.invoice.deleted` points at an invoice whose retrieve is 404 (Stripe: a deleted draft is gone): on
  the old `producers/thin_events.py` (6084517) that became a dead letter, so the deletion never landed.
- A listing that is empty at its first poll (a connected account discovered before its first payment) had no
  tail anchor and waited for the next sweep (`PAYSYNC_POLL_SWEEP_EVERY_S`, default 300 s) before it listed what
  arrived since (`producers/pollers/listing.py` before 22aed48, which sweeps it again after 1, 2, 4 polls).
- The pollers' fleet takes accounts joining mid-run and drops one that deauthorized (unlisted, 403).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.stripe_simulator import SimulatorHandle, start_simulator
from paysync.codec import AvroCodec
from producers.pollers.event_types import type_groups
from producers.pollers.listing import HorizonConfig, HorizonListing
from producers.stripe_api import StripeApi
from producers.thin_events import ThinEventFetcher

from .receiver import Receiver

SECRET = "whsec_thin_pipeline_1234"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _sim(receiver: Receiver | None = None) -> SimulatorHandle:
    return start_simulator(seed=13, clock="realtime", webhook_secrets=[SECRET],
                           webhook_url=receiver.url if receiver else None, retry_base=0.05)


def test_a_thin_deleted_event_lands_as_the_deletion_not_as_a_dead_letter(receiver: Receiver) -> None:
    with _sim(receiver) as h:
        h.generate(events=120, thin_event_share=1.0, invoice_share=1.0, draft_delete_rate=1.0, delay_scale=0.001)
        thin = [json.loads(body) for body, _ in receiver.deliveries]
        deleted = [e for e in thin if e["type"] == "v1.invoice.deleted"]
        assert deleted, "no draft was deleted"
        fetcher = ThinEventFetcher(StripeApi(h.api_key, h.base_url, rate_per_s=50, max_attempts=1))
        for event in deleted[:3]:
            topic, key, value = fetcher.resolve(event, "webhook", 1)
            assert topic == "stripe.events", f"dead-lettered: {event['id']}"
            record = AvroCodec().decode(value, "paysync.StripeEventEnvelope")
            raw = json.loads(record["raw_event"])
            assert record["event_type"] == "invoice.deleted" and record["object_id"] == event["related_object"]["id"]
            assert raw["data"]["object"] == {"id": event["related_object"]["id"], "object": "invoice", "deleted": True}
        created = next(e for e in thin if e["type"] == "v1.customer.created")
        topic, _, value = fetcher.resolve(created, "webhook", 1)  # an object still there: fetched as it is now
        fetched = json.loads(AvroCodec().decode(value, "paysync.StripeEventEnvelope")["raw_event"])["data"]["object"]
        assert topic == "stripe.events" and fetched["id"] == created["related_object"]["id"]
        assert fetched["object"] == "customer" and "deleted" not in fetched


def test_a_listing_empty_at_its_first_poll_is_tailed_once_it_has_entries() -> None:
    with _sim() as h:
        api = StripeApi(h.api_key, h.base_url, rate_per_s=50)
        listing = HorizonListing(api, "/v1/events", {"types": list(type_groups(platform=True)[0])}, None,
                                 HorizonConfig())
        state: dict[str, Any] = {}
        published: list[int] = []

        def publish(listed: list[tuple[dict[str, Any], str]]) -> int:
            published.append(len(listed))
            return len(listed)

        now = time.time()
        assert listing.poll(state, now, publish, lambda: None) == 0  # nothing yet: a new account
        h.generate(events=60, delay_scale=0.001)
        assert sum(listing.poll(state, now + 30 * i, publish, lambda: None) for i in range(1, 5)) > 0, \
            "four polls (two minutes at the default interval) and nothing listed"


def test_the_fleet_follows_accounts_joining_and_leaving_the_simulated_platform() -> None:
    from producers.pollers.accounts import AccountDirectory
    from producers.pollers.fleet import PollerFleet

    with _sim() as h:
        api = StripeApi(h.api_key, h.base_url, rate_per_s=50)
        directory = AccountDirectory(api, fixed=[], relist_every_s=0.0)  # listed again every round
        fleet = PollerFleet(directory, lambda account, _d: [account])
        assert fleet.current() == [None]
        h.generate(wait=False, events=300, rate=150, connected_accounts=2, accounts_connected_during_run=1,
                   connect_at=0.5, accounts_deauthorized_at_end=1, delay_scale=0.001)
        rounds: list[list[str | None]] = []
        while not h.status()["done"] or not h.status()["runs"]:
            rounds.append(fleet.current())
            time.sleep(0.05)
        rounds.append(fleet.current())
        joined = [a for a in h.status()["connected_accounts"] if a not in rounds[-1]]
        assert len(joined) == 1 and len(rounds[-1]) == 3  # the platform and the two that stayed
        left = joined[0]  # the one connected mid-run, deauthorized at the end (newest first)
        assert any(left in r for r in rounds), "never polled while it was connected"
        first_with = next(i for i, r in enumerate(rounds) if left in r)
        assert first_with > 0 and len(rounds[first_with - 1]) == 3  # it joined while the fleet ran
        with pytest.raises(Exception) as err:  # its pollers would only get 403 now
            api.list_page("/v1/events", {"limit": 1}, left)
        assert getattr(err.value, "status", None) == 403
