"""`paysync doctor` and the components' start-up check give one verdict on topic replication: the doctor fails
exactly when `paysync.topics.replication_problem` (what `paysync webhook`, `poll`, `sink` and, with its own topics,
`stream` exit 2 with) finds a problem, and names every problem it found under the topic it is about. On the one-node dev broker the cluster's
default is a factor of 1 and min.insync.replicas 1; the settings and a topic's own config make the mismatches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from paysync.settings import KafkaConnection, TopicSettings
from paysync.topics import (OFFSETS_TOPIC, ReplicationError, check_replication, create_topics, paysync_topic_names,
                            replication_problem)

from streams.settings import StreamSettings

from .conftest import PARTITIONS, Deployment, by_name, failures

Doctor = Callable[..., tuple[int, dict[str, Any], str]]


def _startup_problems() -> tuple[str | None, list[str]]:
    """What the stream worker (the widest start-up check: paysync's topics and its own) finds with the settings now
    in the environment: (its exit-2 message or None, the problems of `check_replication`, in order)."""
    topics, conf, stream = TopicSettings(), KafkaConnection().confluent_config(), StreamSettings()
    names = [*paysync_topic_names(topics.prefix), stream.payout_join_topic, *stream.changelog_topics]
    message = replication_problem(conf, names, topics.replication_factor, topics.min_insync_replicas)
    try:
        check_replication(conf, names, topics.replication_factor, topics.min_insync_replicas)
    except ReplicationError as err:
        return message, list(err.problems)
    return message, []


def _doctor_problems(report: dict[str, Any], prefix: str) -> list[str]:
    """The doctor's replication failures as the start-up check words them (a topic's name put back in front)."""
    found: list[str] = []
    for key, check in failures(report).items():
        parts = check["detail"].split("; ")
        if key.startswith("kafka:topic "):
            name = key.removeprefix("kafka:topic ")
            found += [f"{name} has {p}" for p in parts if p.startswith(("replication factor", "min.insync"))]
        elif key in ("kafka:replication", "kafka:stream topics", f"kafka:{OFFSETS_TOPIC}"):
            found += parts
    return found


def _same_verdict(run_doctor: Doctor, env: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    status, report, text = run_doctor(env, "--only", "kafka")
    message, problems = _startup_problems()  # run_doctor left exactly `env` in the environment
    assert (status == 1) == (message is not None), text
    assert sorted(_doctor_problems(report, env["PAYSYNC_TOPIC_PREFIX"])) == sorted(problems), text
    return report, problems


def test_topics_replicated_as_the_cluster_requires_pass_both(deployment: Deployment, run_doctor: Doctor) -> None:
    report, problems = _same_verdict(run_doctor, deployment.env)
    checks = by_name(report)
    assert problems == [] and checks["kafka:replication"]["status"] == "ok"
    assert "factor 1, min.insync.replicas 1 (the cluster's default" in checks["kafka:replication"]["detail"]
    prefix = deployment.env["PAYSYNC_TOPIC_PREFIX"]
    detail = checks[f"kafka:topic {prefix}stripe.events"]["detail"]
    assert detail == f"{PARTITIONS} partition(s), replication factor 1, min.insync.replicas 1"
    assert checks["kafka:stream topics"]["status"] == "skip"  # no stream worker ran on this prefix


def test_a_replication_factor_setting_above_the_topics_fails_each_topic(deployment: Deployment,
                                                                        run_doctor: Doctor) -> None:
    env = {**deployment.env, "PAYSYNC_TOPIC_REPLICATION_FACTOR": "2"}
    report, problems = _same_verdict(run_doctor, env)
    failed = failures(report)
    for name in paysync_topic_names(env["PAYSYNC_TOPIC_PREFIX"]):
        check = failed[f"kafka:topic {name}"]
        assert check["detail"] == "replication factor 1, not 2", check
        assert "kafka-reassign-partitions" in check["fix"] and "PAYSYNC_TOPIC_REPLICATION_FACTOR" in check["fix"]
    assert len(problems) >= 5


def test_min_insync_above_the_factor_is_refused_by_both(deployment: Deployment, run_doctor: Doctor) -> None:
    env = {**deployment.env, "PAYSYNC_TOPIC_MIN_INSYNC_REPLICAS": "2"}
    report, problems = _same_verdict(run_doctor, env)
    assert problems == ["min.insync.replicas 2 is above the replication factor 1"]
    assert failures(report)["kafka:replication"]["detail"] == problems[0]


def test_a_topic_with_its_own_min_insync_is_named_alone(deployment: Deployment, run_doctor: Doctor) -> None:
    prefix = f"doc{uuid.uuid4().hex[:8]}."
    conf = {"bootstrap.servers": deployment.env["KAFKA_BOOTSTRAP_SERVERS"]}
    odd = f"{prefix}stripe.events"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(odd, PARTITIONS, 1, config={"min.insync.replicas": "2"})])[odd].result(30)
    create_topics(conf, prefix, partitions=PARTITIONS)  # the others, as paysync creates them
    report, problems = _same_verdict(run_doctor, {**deployment.env, "PAYSYNC_TOPIC_PREFIX": prefix})
    assert problems == [f"{odd} has min.insync.replicas 2, not 1"]
    assert list(failures(report)) == [f"kafka:topic {odd}"]
    assert failures(report)[f"kafka:topic {odd}"]["detail"] == "min.insync.replicas 2, not 1"


def test_the_stream_workers_own_topics_are_judged_as_its_start_up_check_does(deployment: Deployment,
                                                                               run_doctor: Doctor) -> None:
    prefix = f"doc{uuid.uuid4().hex[:8]}."
    conf = {"bootstrap.servers": deployment.env["KAFKA_BOOTSTRAP_SERVERS"]}
    create_topics(conf, prefix, partitions=PARTITIONS)
    join, odd, *changelogs = _stream_topic_names(prefix)
    admin = AdminClient(conf)
    futures = admin.create_topics([NewTopic(join, PARTITIONS, 1), NewTopic(odd, PARTITIONS, 1, config={
        "cleanup.policy": "compact", "min.insync.replicas": "2"})])
    for future in futures.values():
        future.result(30)
    report, problems = _same_verdict(run_doctor, {**deployment.env, "PAYSYNC_TOPIC_PREFIX": prefix})
    assert problems == [f"{odd} has min.insync.replicas 2, not 1"]
    assert list(failures(report)) == ["kafka:stream topics"]
    assert by_name(report)[f"kafka:topic {prefix}stripe.events"]["status"] == "ok"


def _stream_topic_names(prefix: str) -> list[str]:
    """The stream worker's own topics for `prefix`: its payout join, then its changelogs."""
    stream = StreamSettings(topics=TopicSettings(prefix=prefix))
    return [stream.payout_join_topic, *stream.changelog_topics]
