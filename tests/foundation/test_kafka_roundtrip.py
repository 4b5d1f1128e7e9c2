"""An Avro Stripe envelope goes to the real broker and comes back identical; topics are created idempotently."""

from __future__ import annotations

import json
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from paysync.codec import AvroCodec
from paysync.topics import ALL_TOPICS, CURSORS, STRIPE_EVENTS, create_topics


def test_envelope_round_trip_through_the_broker(kafka_bootstrap: str, topic_prefix: str) -> None:
    conf = {"bootstrap.servers": kafka_bootstrap}
    create_topics(conf, topic_prefix, partitions=3)
    topic = STRIPE_EVENTS.full_name(topic_prefix)
    codec = AvroCodec()
    raw = {"id": "evt_rt", "object": "event", "type": "charge.succeeded", "data": {"object": {"id": "ch_rt", "amount": 1000, "currency": "jpy"}}}
    record = {
        "event_id": "evt_rt", "event_type": "charge.succeeded", "created": 1_700_000_000,
        "api_version": "2026-10-28.endive", "livemode": False, "account": None, "source": "webhook",
        "received_at": int(time.time() * 1000), "object_id": "ch_rt", "object_type": "charge", "thin": False,
        "raw_event": json.dumps(raw, separators=(",", ":")) + " \u00e9\u6771",
    }
    value = codec.encode(STRIPE_EVENTS.schema, record)
    producer = Producer({**conf, "enable.idempotence": True, "acks": "all"})
    delivered: list[object] = []
    producer.produce(topic, key=b"ch_rt", value=value, on_delivery=lambda err, msg: delivered.append(err or msg))
    assert producer.flush(30) == 0
    assert len(delivered) == 1 and not isinstance(delivered[0], Exception)

    consumer = Consumer({**conf, "group.id": f"{topic_prefix}rt", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    msg = None
    deadline = time.monotonic() + 30
    while msg is None and time.monotonic() < deadline:
        candidate = consumer.poll(0.5)
        if candidate is not None and candidate.error() is None:
            msg = candidate
    consumer.close()
    assert msg is not None, "record did not come back"
    assert msg.key() == b"ch_rt"
    assert msg.value() == value
    assert codec.decode(msg.value(), STRIPE_EVENTS.schema) == record


def test_create_topics_is_idempotent_and_declares_compaction(kafka_bootstrap: str, topic_prefix: str) -> None:
    conf = {"bootstrap.servers": kafka_bootstrap}
    first = create_topics(conf, topic_prefix, partitions=2)
    assert sorted(first) == sorted(t.full_name(topic_prefix) for t in ALL_TOPICS)
    assert create_topics(conf, topic_prefix, partitions=2) == []
    admin = AdminClient(conf)
    md = admin.list_topics(timeout=10)
    assert len(md.topics[STRIPE_EVENTS.full_name(topic_prefix)].partitions) == 2
    assert len(md.topics[CURSORS.full_name(topic_prefix)].partitions) == 1
    from confluent_kafka.admin import ConfigResource

    res = ConfigResource(ConfigResource.Type.TOPIC, CURSORS.full_name(topic_prefix))
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["cleanup.policy"].value == "compact"


def test_ensure_topics_creates_once(kafka_bootstrap: str, topic_prefix: str) -> None:
    from paysync.topics import ensure_topics

    conf = {"bootstrap.servers": kafka_bootstrap}
    name = f"{topic_prefix}internal-join"
    assert ensure_topics(conf, [name], 3) == [name]
    assert ensure_topics(conf, [name], 3) == []
    assert len(AdminClient(conf).list_topics(timeout=10).topics[name].partitions) == 3


def test_ensure_topics_creates_the_missing_ones_compacted_on_request(kafka_bootstrap: str, topic_prefix: str) -> None:
    from confluent_kafka.admin import ConfigResource

    from paysync.topics import ensure_topics

    conf = {"bootstrap.servers": kafka_bootstrap}
    names = [f"{topic_prefix}table-a-changelog", f"{topic_prefix}table-b-changelog"]
    assert ensure_topics(conf, names[:1], 2, compact=True) == names[:1]
    assert ensure_topics(conf, names, 2, compact=True) == names[1:]
    admin = AdminClient(conf)
    for name in names:
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        assert admin.describe_configs([res])[res].result(10)["cleanup.policy"].value == "compact"


def test_wait_for_topics_names_what_is_not_ready(kafka_bootstrap: str, topic_prefix: str) -> None:
    from paysync.topics import ensure_topics, wait_for_topics

    conf = {"bootstrap.servers": kafka_bootstrap}
    ready = f"{topic_prefix}ready"
    ensure_topics(conf, [ready], 2)
    assert wait_for_topics(conf, [ready], timeout=10) == []
    started = time.monotonic()
    assert wait_for_topics(conf, [ready, f"{topic_prefix}never-created"], timeout=1.5) == [f"{topic_prefix}never-created"]
    assert time.monotonic() - started >= 1.5
