"""The events poller does not publish again an event already read back from `stripe.events` (issue 16), and
publishes every listed event whenever that cannot be known: an id only sent, a set not current, a topic it cannot
read. Real broker; the Stripe list is `FakeStripe`; the set's consumer is pumped by the test (no thread)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_stripe import FakeCursors, FakeStripe, event
from producer_helpers import read_topic

from paysync.codec import AvroCodec
from paysync.net import free_port
from paysync.records import ENVELOPE
from paysync.topics import STRIPE_EVENTS
from producers.envelope import envelope
from producers.pollers.delivered import DeliveredConfig, DeliveredEvents, envelope_id
from producers.pollers.events_poller import EventsPoller
from producers.publisher import KafkaPublisher, producer_config

CODEC = AvroCodec()


class Clock:
    """The set's clock, moved by the test: `current()` never depends on how fast the machine is."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _record(evt: dict[str, Any], source: str = "webhook", **fields: Any) -> tuple[str, bytes]:
    key, record = envelope(evt, json.dumps(evt), source, int(time.time() * 1000))  # type: ignore[arg-type]
    return key, CODEC.encode(ENVELOPE.schema, {**record, **fields})


def test_envelope_id_remembers_snapshots_only() -> None:
    evt = event(1, 1_700_000_000)
    _key, value = _record(evt)
    assert envelope_id(value, CODEC) == (evt["id"], evt["api_version"])
    assert envelope_id(_record(evt, thin=True)[1], CODEC) is None  # the streams skip thin ones without a dedupe entry
    assert envelope_id(value[:-3], CODEC) is None  # what the streams cannot decode proves nothing
    assert envelope_id(b"\x00" + value[1:], CODEC) is None
    assert envelope_id(None, CODEC) is None


@pytest.fixture
def kafka(kafka_bootstrap: str, topics: str) -> Iterator[tuple[dict[str, Any], str, KafkaPublisher]]:
    conf = {"bootstrap.servers": kafka_bootstrap}
    publisher = KafkaPublisher(producer_config(conf, 10_000))
    yield conf, STRIPE_EVENTS.full_name(topics), publisher
    publisher.close()


def _stripe(*events: dict[str, Any]) -> FakeStripe:
    api = FakeStripe(now=time.time())
    for evt in events:
        api.add("/v1/events", evt, visible_at=0)
    return api


def _poller(api: FakeStripe, publisher: KafkaPublisher, prefix: str, delivered: DeliveredEvents | None,
            observed: list[str] | None = None) -> tuple[EventsPoller, list[int]]:
    """A poller on fresh cursors (a first start, or a restart that lost its cursor: it lists everything again)."""
    dropped: list[int] = []
    observers = (lambda obj: observed.append(obj["id"]),) if observed is not None else ()
    poller = EventsPoller(api, publisher, FakeCursors(),  # type: ignore[arg-type]
                          topic_prefix=prefix, delivered=delivered,
                          observers=observers, on_dropped=lambda _name, n: dropped.append(n))
    return poller, dropped


def _sent(publisher: KafkaPublisher, topic: str, *events: dict[str, Any]) -> None:
    """The receiver's copies, acknowledged by the broker (acks=all)."""
    publisher.publish_many_sync([(topic, *_record(evt)) for evt in events], 10)


def _on_topic(bootstrap: str, topic: str) -> list[tuple[str, str]]:
    return sorted((r["event_id"], r["source"]) for r in read_topic(bootstrap, topic))


def test_an_event_read_back_from_the_topic_is_not_published_again(kafka: Any, kafka_bootstrap: str,
                                                                  topics: str) -> None:
    conf, topic, publisher = kafka
    now = int(time.time())
    delivered_evt, missed_evt = event(1, now - 60), event(2, now - 50)
    _sent(publisher, topic, delivered_evt)
    delivered = DeliveredEvents(conf, topic, DeliveredConfig(check_every_s=0), clock=Clock())
    try:
        assert delivered.wait_current(30)  # read back what the broker acknowledged before
        observed: list[str] = []
        poller, dropped = _poller(_stripe(delivered_evt, missed_evt), publisher, topics, delivered, observed)
        assert poller.poll_once() == 1
    finally:
        delivered.close()
    assert poller.dropped == 1 and dropped == [1]
    assert observed == [delivered_evt["id"], missed_evt["id"]]  # a dropped copy still reaches the observers
    assert _on_topic(kafka_bootstrap, topic) == [(delivered_evt["id"], "webhook"), (missed_evt["id"], "poll")]


def test_a_copy_read_back_at_another_api_version_does_not_stand_for_the_listed_one(kafka: Any, kafka_bootstrap: str,
                                                                                 topics: str) -> None:
    """A legacy or Connect endpoint renders the object in another shape, which the streams may have dead-lettered
    where the listed copy maps: the listed copy is still published."""
    conf, topic, publisher = kafka
    listed = event(1, int(time.time()) - 60)
    legacy = {**listed, "api_version": "2020-08-27"}
    _sent(publisher, topic, legacy)
    delivered = DeliveredEvents(conf, topic, DeliveredConfig(check_every_s=0), clock=Clock())
    try:
        assert delivered.wait_current(30)
        assert delivered.already_on_topic([(legacy["id"], "2020-08-27")]) == {legacy["id"]}
        poller, dropped = _poller(_stripe(listed), publisher, topics, delivered)
        assert poller.poll_once() == 1
    finally:
        delivered.close()
    assert poller.dropped == 0 and dropped == []
    assert _on_topic(kafka_bootstrap, topic) == [(listed["id"], "poll"), (listed["id"], "webhook")]


def test_an_event_only_sent_is_still_published(kafka: Any, kafka_bootstrap: str, topics: str) -> None:
    conf, topic, publisher = kafka
    evt = event(1, int(time.time()) - 60)
    clock = Clock()
    delivered = DeliveredEvents(conf, topic, DeliveredConfig(check_every_s=0), clock=clock)
    try:
        assert delivered.wait_current(30)  # current, on a topic without the event
        _sent(publisher, topic, evt)  # the webhook's copy: acknowledged, not read back yet
        assert delivered.current()
        api = _stripe(evt)
        first, _ = _poller(api, publisher, topics, delivered)
        assert first.poll_once() == 1 and first.dropped == 0
        again, _ = _poller(api, publisher, topics, delivered)  # the poller's own copy, sent, not read back either
        assert again.poll_once() == 1 and again.dropped == 0
        clock.t += 1
        assert delivered.wait_current(30)  # now read back
        last, dropped = _poller(api, publisher, topics, delivered)
        assert last.poll_once() == 0 and dropped == [1]
    finally:
        delivered.close()
    assert _on_topic(kafka_bootstrap, topic) == [(evt["id"], "poll"), (evt["id"], "poll"), (evt["id"], "webhook")]


def test_a_set_not_confirmed_lately_is_not_used(kafka: Any, topics: str) -> None:
    conf, topic, publisher = kafka
    evt = event(1, int(time.time()) - 60)
    _sent(publisher, topic, evt)
    clock = Clock()
    config = DeliveredConfig(check_every_s=0, max_behind_s=30)
    delivered = DeliveredEvents(conf, topic, config, clock=clock)
    try:
        assert delivered.wait_current(30) and len(delivered) == 1
        clock.t += 31  # its consumer has not confirmed it read the topic to its end for longer than max_behind_s
        assert not delivered.current()
        poller, dropped = _poller(_stripe(evt), publisher, topics, delivered)
        assert poller.poll_once() == 1 and dropped == []
    finally:
        delivered.close()


@pytest.mark.parametrize("where", ["no broker", "no topic"])
def test_a_set_that_cannot_read_the_topic_publishes_everything(kafka: Any, kafka_bootstrap: str, topics: str,
                                                               where: str) -> None:
    conf, topic, publisher = kafka
    now = int(time.time())
    events = [event(1, now - 60), event(2, now - 50)]
    _sent(publisher, topic, *events)  # both are on the topic, but the set cannot know it
    unread_conf, unread_topic = ({"bootstrap.servers": f"127.0.0.1:{free_port()}"}, topic) \
        if where == "no broker" else (conf, topic + ".x")
    config = DeliveredConfig(check_every_s=0, request_timeout_s=1.0)
    delivered = DeliveredEvents(unread_conf, unread_topic, config, clock=Clock())
    try:
        assert delivered.pump(0.1) == 0 and not delivered.current()
        poller, dropped = _poller(_stripe(*events), publisher, topics, delivered)
        assert poller.poll_once() == 2 and dropped == []
    finally:
        delivered.close()
    assert sorted(source for _id, source in _on_topic(kafka_bootstrap, topic)) == ["poll", "poll", "webhook", "webhook"]
