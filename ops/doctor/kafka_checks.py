"""Kafka: the cluster answers, every topic of `paysync.topics` exists with its partitions, and the topics and the
consumer offsets are replicated as the components require at start-up. The replication verdict is theirs: the same
`paysync.topics.resolve_replication` / `check_replication` call with the same settings (`PAYSYNC_TOPIC_*`), so the
doctor fails exactly when `paysync webhook`, `poll` and `sink` would refuse to start (exit 2), and names the same
problems, each under the topic it is about; given the stream's own topics (its payout join and changelogs), the
verdict of `paysync stream`'s start-up check too."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paysync.settings import KafkaConnection, TopicSettings
from paysync.topics import (ALL_TOPICS, OFFSETS_TOPIC, Replication, ReplicationError, ReplicationProblem,
                            check_replication, paysync_topic_names, resolve_replication)

from ops.doctor.report import Check, fail, ok, skip, warn

SYSTEM = "kafka"
PARTITIONS_FIX = ("the data topics must share PAYSYNC_TOPIC_PARTITIONS (co-partitioning); recreate the topic or set "
                  "PAYSYNC_TOPIC_PARTITIONS to its count")

def _replication(conf: dict[str, Any], topics: TopicSettings, names: list[str], timeout: float,
                 ) -> tuple[Check, Replication | None, tuple[ReplicationProblem, ...], str]:
    """(the replication check, the replication required, the start-up check's problems (tagged), their fix)."""
    from confluent_kafka import KafkaException

    factor, min_insync = topics.replication_factor, topics.min_insync_replicas
    try:
        rep = resolve_replication(conf, factor, min_insync, timeout)
    except ReplicationError as err:
        return fail(SYSTEM, "replication", "; ".join(err.problems), err.FIX), None, (), ""
    except KafkaException as exc:
        return warn(SYSTEM, "replication", f"not checked: the cluster did not answer ({exc.args[0]})"), None, (), ""
    source = "from the settings" if factor is not None or min_insync is not None else "the cluster's default"
    check = ok(SYSTEM, "replication", f"factor {rep.factor}, min.insync.replicas {rep.min_insync} ({source}; "
                                      f"{rep.brokers} broker(s) live)")
    try:
        check_replication(conf, names, factor, min_insync, timeout)
    except ReplicationError as err:
        return check, rep, err.tagged, err.FIX
    except KafkaException as exc:
        return warn(SYSTEM, "replication", f"not checked: the cluster did not answer ({exc.args[0]})"), None, (), ""
    return check, rep, (), ""


def _topic_check(name: str, expected_partitions: int, meta: Any, rep: Replication | None,
                 problems: Sequence[ReplicationProblem], fix: str) -> Check:
    """One topic: present, its partition count, and the start-up check's replication problems about it."""
    label = f"topic {name}"
    if meta is None or meta.error is not None:
        return fail(SYSTEM, label, "missing", "run `paysync topics` (creates every paysync topic, idempotent)")
    partitions = len(meta.partitions)
    wrong = [f"{partitions} partitions, configured {expected_partitions}"] if partitions != expected_partitions else []
    wrong += [p.detail for p in problems]
    if wrong:
        fixes = [PARTITIONS_FIX] if partitions != expected_partitions else []
        return fail(SYSTEM, label, "; ".join(wrong), "; ".join(fixes + ([fix] if problems else [])))
    replicated = f", replication factor {rep.factor}, min.insync.replicas {rep.min_insync}" if rep else ""
    return ok(SYSTEM, label, f"{partitions} partition(s){replicated}")


def _offsets_check(meta: Any, problems: list[str], fix: str) -> Check:
    """The consumer offsets topic: replicated at least as the paysync topics (the start-up check's rule)."""
    label = OFFSETS_TOPIC
    if problems:
        return fail(SYSTEM, label, "; ".join(problems), fix)
    if meta is None or not meta.partitions:
        return skip(SYSTEM, label, "not created yet (the brokers create it for the first consumer group)")
    return ok(SYSTEM, label, f"replication factor {min(len(p.replicas) for p in meta.partitions.values())}")


def _about(problems: Sequence[ReplicationProblem], names: Sequence[str]) -> list[ReplicationProblem]:
    """The start-up check's problems about the topics `names`, in order (by each problem's topic tag)."""
    wanted = set(names)
    return [p for p in problems if p.topic in wanted]


def _stream_topics_check(names: Sequence[str], cluster: Any, problems: list[str], fix: str) -> Check:
    """The stream's own topics (payout join, changelogs): replicated as required when they exist (the stream creates
    them at its first start)."""
    label = "stream topics"
    if problems:
        return fail(SYSTEM, label, "; ".join(problems), fix)
    present = [n for n in names if n in cluster.topics]
    if not present:
        return skip(SYSTEM, label, "not created yet (`paysync stream` creates them replicated as required)")
    return ok(SYSTEM, label, f"{len(present)} of {len(names)} (payout join, changelogs) replicated as required")


def check_kafka(connection: KafkaConnection, topics: TopicSettings, stream_topics: Sequence[str] = (),
                timeout: float = 10.0) -> list[Check]:
    """Reachability, the replication required, one check per declared topic, then the stream's own topics (when
    given) and the consumer offsets."""
    from confluent_kafka.admin import AdminClient

    conf = connection.confluent_config()
    try:
        cluster = AdminClient(conf).list_topics(timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - KafkaException or a timeout: the cluster is not reachable
        return [fail(SYSTEM, "broker reachable", f"{connection.bootstrap_servers}: {type(exc).__name__}",
                     "check KAFKA_BOOTSTRAP_SERVERS and the PAYSYNC_KAFKA_SECURITY_PROTOCOL/SASL settings")]
    checks = [ok(SYSTEM, "broker reachable", f"{connection.bootstrap_servers}, {len(cluster.brokers)} broker(s)")]
    declared = paysync_topic_names(topics.prefix)
    replication, rep, problems, fix = _replication(conf, topics, [*declared, *stream_topics], timeout)
    checks.append(replication)
    for topic, name in zip(ALL_TOPICS, declared):
        checks.append(_topic_check(name, topic.partitions or topics.partitions, cluster.topics.get(name), rep,
                                   _about(problems, [name]), fix))
    if stream_topics:
        stream = [p.text for p in _about(problems, stream_topics)]
        checks.append(_stream_topics_check(stream_topics, cluster, stream, fix))
    offsets = [p.text for p in _about(problems, [OFFSETS_TOPIC])]
    checks.append(_offsets_check(cluster.topics.get(OFFSETS_TOPIC), offsets, fix))
    placed = {*declared, *stream_topics, OFFSETS_TOPIC}
    unplaced = [p.text for p in problems if p.topic is None or p.topic not in placed]
    if unplaced:  # the place of a problem about no topic (or none listed here): the replication check, failed
        checks[1] = fail(SYSTEM, "replication", "; ".join(unplaced), fix)
    return checks
