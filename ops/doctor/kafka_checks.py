"""Kafka: the cluster answers, and every topic of `paysync.topics` exists with its partitions and replication."""

from __future__ import annotations

from typing import Any

from paysync.settings import KafkaConnection, TopicSettings
from paysync.topics import ALL_TOPICS

from ops.doctor.report import Check, fail, ok

SYSTEM = "kafka"


def _default_replication(admin: Any, broker_id: int, timeout: float) -> int | None:
    """The broker's `default.replication.factor`: what `paysync topics` creates with (`replication_factor=-1`)."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]  # exported, not in __all__

    try:
        futures = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, str(broker_id))],
                                         request_timeout=timeout)
        configs = next(iter(futures.values())).result(timeout)
        return int(configs["default.replication.factor"].value)
    except Exception:  # noqa: BLE001 - an ACL or an old broker: the replication check falls back to 1
        return None


def _topic_check(name: str, expected_partitions: int, replication: int, meta: Any) -> Check:
    label = f"topic {name}"
    if meta is None or meta.error is not None:
        return fail(SYSTEM, label, "missing", "run `paysync topics` (creates every paysync topic, idempotent)")
    partitions = len(meta.partitions)
    replicas = min((len(p.replicas) for p in meta.partitions.values()), default=0)
    if partitions != expected_partitions:
        return fail(SYSTEM, label, f"{partitions} partitions, configured {expected_partitions}",
                    "the data topics must share PAYSYNC_TOPIC_PARTITIONS (co-partitioning); recreate the topic or set "
                    "PAYSYNC_TOPIC_PARTITIONS to its count")
    if replicas < replication:
        return fail(SYSTEM, label, f"replication {replicas}, the cluster's default.replication.factor is {replication}",
                    "increase the topic's replication (kafka-reassign-partitions) so a broker loss loses nothing")
    return ok(SYSTEM, label, f"{partitions} partition(s), replication {replicas}")


def check_kafka(connection: KafkaConnection, topics: TopicSettings, timeout: float = 10.0) -> list[Check]:
    """Reachability, then one check per declared topic."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(connection.confluent_config())
    try:
        cluster = admin.list_topics(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - KafkaException or a timeout: the cluster is not reachable
        return [fail(SYSTEM, "broker reachable", f"{connection.bootstrap_servers}: {type(exc).__name__}",
                     "check KAFKA_BOOTSTRAP_SERVERS and the PAYSYNC_KAFKA_SECURITY_PROTOCOL/SASL settings")]
    brokers = sorted(cluster.brokers)
    checks = [ok(SYSTEM, "broker reachable", f"{connection.bootstrap_servers}, {len(brokers)} broker(s)")]
    replication = _default_replication(admin, brokers[0], timeout) if brokers else None
    replication = min(replication or 1, max(len(brokers), 1))
    for topic in ALL_TOPICS:
        name = topic.full_name(topics.prefix)
        checks.append(_topic_check(name, topic.partitions or topics.partitions, replication, cluster.topics.get(name)))
    return checks
