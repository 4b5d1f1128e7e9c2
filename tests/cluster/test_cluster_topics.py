"""Topic replication on a real 3-node cluster: created with RF 3 and min.insync.replicas 2 by default, explicit
settings win, and the start-up check names every topic replicated otherwise (and still passes with a node down)."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from ops.kafka_cluster import ClusterConfig, start_node, stop_node, wait_in_sync
from paysync.topics import (ReplicationError, check_replication, create_topics, paysync_topic_names,
                            resolve_replication)

pytestmark = pytest.mark.slow


def _replicas(conf: dict[str, str], name: str) -> set[int]:
    """The replica counts of the topic's partitions, once the broker asked serves it (a new topic reaches every
    broker's metadata a moment after its creation)."""
    admin = AdminClient(conf)
    deadline = time.monotonic() + 30
    while True:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if topic is not None and topic.error is None and topic.partitions or time.monotonic() > deadline:
            return {len(p.replicas) for p in topic.partitions.values()} if topic else set()
        time.sleep(0.2)


def test_topics_default_to_three_replicas_and_min_insync_two(cluster: ClusterConfig) -> None:
    conf = {"bootstrap.servers": cluster.bootstrap}
    prefix = f"c{uuid.uuid4().hex[:8]}."
    assert len(create_topics(conf, prefix, partitions=3)) == 5
    for name in paysync_topic_names(prefix):
        assert _replicas(conf, name) == {3}
    rep = check_replication(conf, paysync_topic_names(prefix))
    assert (rep.factor, rep.min_insync, rep.brokers) == (3, 2, 3)


def test_explicit_settings_are_checked_against_the_topics(cluster: ClusterConfig) -> None:
    conf = {"bootstrap.servers": cluster.bootstrap}
    prefix = f"c{uuid.uuid4().hex[:8]}."
    create_topics(conf, prefix, partitions=1, replication_factor=2, min_insync_replicas=1)
    assert _replicas(conf, f"{prefix}stripe.events") == {2}
    _served_by_every_node(cluster, paysync_topic_names(prefix))
    assert check_replication(conf, paysync_topic_names(prefix), 2, 1).factor == 2
    with pytest.raises(ReplicationError) as err:  # the defaults of a 3-broker cluster: 3 and 2
        check_replication(conf, paysync_topic_names(prefix))
    message = str(err.value)
    for name in paysync_topic_names(prefix):
        assert f"{name} has replication factor 2, not 3" in message
        assert f"{name} has min.insync.replicas 1, not 2" in message
    assert "PAYSYNC_TOPIC_REPLICATION_FACTOR" in message and "kafka-reassign-partitions" in message


def _served_by_every_node(cluster: ClusterConfig, names: list[str]) -> None:
    """Every node's own metadata lists `names` (the check asks whichever broker answers, and a topic created a
    moment ago may not be in every broker's metadata yet: a topic the check cannot see is not its business)."""
    for port in cluster.ports:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        deadline = time.monotonic() + 30
        while not all(n in admin.list_topics(timeout=10).topics for n in names):
            assert time.monotonic() < deadline, f"node on {port} does not serve {names} after 30 s"
            time.sleep(0.1)


def _brokers_listed(conf: dict[str, str], count: int) -> None:
    """The metadata lists `count` brokers: a stopped node stays listed until the controller fences it, which
    may be a moment after its process is gone (CI saw 3 brokers listed right after `stop_node` returned)."""
    admin = AdminClient(conf)
    deadline = time.monotonic() + 30
    while (listed := len(admin.list_topics(timeout=10).brokers)) != count:
        assert time.monotonic() < deadline, f"{listed} brokers listed after 30 s, not {count}"
        time.sleep(0.2)


def test_an_under_replicated_topic_is_named_and_min_insync_above_rf_refused(cluster: ClusterConfig) -> None:
    conf = {"bootstrap.servers": cluster.bootstrap}
    prefix = f"c{uuid.uuid4().hex[:8]}."
    create_topics(conf, prefix, partitions=1)
    single = f"{prefix}single"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(single, 1, 1)])[single].result(20)
    assert _replicas(conf, single) == {1}
    _served_by_every_node(cluster, [*paysync_topic_names(prefix), single])
    with pytest.raises(ReplicationError) as err:
        check_replication(conf, [*paysync_topic_names(prefix), single])
    assert err.value.problems == [f"{single} has replication factor 1, not 3"]
    with pytest.raises(ReplicationError, match="min.insync.replicas 3 is above the replication factor 2"):
        resolve_replication(conf, 2, 3)


def test_a_node_down_still_resolves_three_and_passes_the_check(cluster: ClusterConfig) -> None:
    conf = {"bootstrap.servers": cluster.bootstrap}
    prefix = f"c{uuid.uuid4().hex[:8]}."
    create_topics(conf, prefix, partitions=2)
    _served_by_every_node(cluster, paysync_topic_names(prefix))  # every node knows the topics before one stops
    stop_node(cluster, 3)
    try:
        _brokers_listed(conf, 2)  # the moment checked: the controller has fenced the stopped node
        rep = check_replication(conf, paysync_topic_names(prefix))
        assert (rep.factor, rep.min_insync, rep.brokers) == (3, 2, 2)
    finally:
        start_node(cluster, 3)
    assert wait_in_sync(cluster.bootstrap, 120, prefix) == []


def test_internal_topics_are_replicated_on_the_cluster(cluster: ClusterConfig) -> None:
    from confluent_kafka import Consumer

    conf = {"bootstrap.servers": cluster.bootstrap}
    group = f"c{uuid.uuid4().hex[:8]}"
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False})
    try:  # a committed offset makes the brokers create __consumer_offsets (offsets.topic.replication.factor)
        from confluent_kafka import TopicPartition

        create_topics(conf, f"{group}.", partitions=1)
        # the group's coordinator refuses a commit for a topic its own metadata does not list yet
        # (UNKNOWN_TOPIC_OR_PART): the commit is made once every node serves the topic
        _served_by_every_node(cluster, [f"{group}.stripe.events"])
        consumer.commit(offsets=[TopicPartition(f"{group}.stripe.events", 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    assert _replicas(conf, "__consumer_offsets") == {3}
