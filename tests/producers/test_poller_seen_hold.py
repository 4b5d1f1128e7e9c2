"""`hold_newest_s`: the events tail leaves the newest events to the next poll (their webhooks usually reach the topic
meanwhile, so the poller's copy is dropped) without ever passing them: each is published once, one poll later, also
by a poller restarted from the saved cursor. No Kafka: `FakeStripe` on a clock the test moves."""

from __future__ import annotations

from typing import Any

from fake_stripe import Entry, FakeCursors, FakePublisher, FakeStripe, event

from paysync.codec import AvroCodec
from producers.pollers.events_poller import EventsPoller
from producers.pollers.listing import HorizonConfig

T0 = 1_800_000_000
CODEC = AvroCodec()


class StripeWithLt(FakeStripe):
    """`FakeStripe` that also applies `created[lt]` (as Stripe does), so a sweep held short lists less."""

    def _match(self, entry: Entry, params: dict[str, Any]) -> bool:
        lt = (params.get("created") or {}).get("lt")
        return super()._match(entry, params) and (lt is None or entry.obj["created"] < lt)


def _poller(api: FakeStripe, pub: FakePublisher, cursors: FakeCursors, hold_s: int) -> EventsPoller:
    return EventsPoller(api, pub, cursors, horizon=HorizonConfig(hold_newest_s=hold_s),  # type: ignore[arg-type]
                        types=(("charge.succeeded",),), codec=CODEC)


def _ids(pub: FakePublisher) -> list[str]:
    return [CODEC.decode(value)["event_id"] for _topic, _key, value in pub.records]


def test_the_newest_events_wait_one_poll_and_are_published_once() -> None:
    api, pub, cursors = StripeWithLt(now=T0), FakePublisher(), FakeCursors()
    api.add("/v1/events", event(1, T0 - 60), visible_at=0)
    poller = _poller(api, pub, cursors, hold_s=5)
    assert poller.poll_once(now=T0) == 1  # the first poll sweeps: nothing held
    api.add("/v1/events", event(2, T0 + 10), visible_at=0)
    api.add("/v1/events", event(3, T0 + 28), visible_at=0)
    api.now = T0 + 30
    assert poller.poll_once(now=T0 + 30) == 1  # evt 3 was created 2 s ago: left to the next poll
    assert _ids(pub) == ["evt_00000001", "evt_00000002"]
    restarted = _poller(api, pub, cursors, hold_s=5)  # from the saved cursor: its anchor is evt 2, not past evt 3
    api.now = T0 + 40
    assert restarted.poll_once(now=T0 + 40) == 1
    assert restarted.poll_once(now=T0 + 50) == 0
    assert _ids(pub) == ["evt_00000001", "evt_00000002", "evt_00000003"]


def test_without_hold_the_tail_publishes_the_newest_at_once() -> None:
    api, pub, cursors = FakeStripe(now=T0), FakePublisher(), FakeCursors()
    api.add("/v1/events", event(1, T0 - 60), visible_at=0)
    poller = _poller(api, pub, cursors, hold_s=0)
    poller.poll_once(now=T0)
    api.add("/v1/events", event(3, T0 + 28), visible_at=0)
    api.now = T0 + 30
    assert poller.poll_once(now=T0 + 30) == 1


def test_a_sweep_held_short_never_moves_its_cursor_past_what_it_listed() -> None:
    """A hold longer than the horizon: the first sweep lists up to T0-20, so its cursor stays at T0-20 (not T0-5),
    and the event created at T0-10 is listed by the next sweep instead of being passed for good."""
    api, pub, cursors = StripeWithLt(now=T0), FakePublisher(), FakeCursors()
    api.add("/v1/events", event(1, T0 - 10), visible_at=0)
    poller = EventsPoller(api, pub, cursors, types=(("charge.succeeded",),), codec=CODEC,  # type: ignore[arg-type]
                          horizon=HorizonConfig(horizon_s=5, hold_newest_s=20, deep_every_s=30))
    assert poller.poll_once(now=T0) == 0
    api.now = T0 + 40
    assert poller.poll_once(now=T0 + 40) == 1
    assert _ids(pub) == ["evt_00000001"]
