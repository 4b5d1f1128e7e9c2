"""The doctor places each problem of the start-up check (`paysync.topics.check_replication`) under the check of the
topic it is about by the problem's topic tag, not by its text. A fake cluster (admin client) gives topic names the
text rule got wrong: a stream topic named as a paysync topic followed by " has …" (the paysync topic's name is a
prefix of it). Before, its problem "<name> has x has min.insync.replicas 2, not 1" matched the text prefix
"<paysync topic> has " and failed that paysync topic too; a problem about no topic fails the replication check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import confluent_kafka.admin
import pytest
from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]  # exported, not in __all__

import paysync.topics as topics
from ops.doctor.kafka_checks import check_kafka
from paysync.settings import KafkaConnection, TopicSettings
from paysync.topics import ALL_TOPICS, OFFSETS_TOPIC, paysync_topic_names

PREFIX = "t."
PARTITIONS = 2
DECLARED = paysync_topic_names(PREFIX)
COUNTS = {t.full_name(PREFIX): t.partitions or PARTITIONS for t in ALL_TOPICS}  # as configured
ODD = f"{PREFIX}stripe.events has x"  # a stream topic: the name of a paysync topic, then " has x"


class Admin:
    """A cluster of `brokers` brokers, every topic on one replica; `min_insync` a topic's own min.insync.replicas
    (else 1). `list_topics` and `describe_configs` as confluent_kafka's AdminClient answers them."""

    def __init__(self, names: list[str], brokers: int = 1, min_insync: dict[str, int] | None = None) -> None:
        self.names, self.brokers, self.min_insync = names, brokers, min_insync or {}

    def list_topics(self, timeout: float) -> Any:
        def topic(partitions: int) -> Any:
            return SimpleNamespace(error=None, partitions={
                i: SimpleNamespace(replicas=[1], leader=1) for i in range(partitions)})

        return SimpleNamespace(brokers={i: None for i in range(1, self.brokers + 1)}, orig_broker_id=1,
                               topics={**{n: topic(COUNTS.get(n, PARTITIONS)) for n in self.names}, OFFSETS_TOPIC: topic(1)})

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        (resource,) = resources
        value = str(self.min_insync.get(resource.name, 1))

        def result(timeout: float) -> dict[str, Any]:
            if resource.restype == ConfigResource.Type.BROKER:
                return {"default.replication.factor": SimpleNamespace(value="1")}
            return {"min.insync.replicas": SimpleNamespace(value=value)}

        return {resource: SimpleNamespace(result=result)}


def _doctor(monkeypatch: pytest.MonkeyPatch, admins: list[Admin], stream_topics: list[str],
            **settings: Any) -> dict[str, Any]:
    """The doctor's Kafka checks (by name) on the fake cluster: the check's own metadata from the first admin, then
    one admin per `paysync.topics` call (`resolve_replication`, `check_replication`)."""
    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", lambda conf: admins[0])
    calls = iter(admins[1:])
    monkeypatch.setattr(topics, "_admin", lambda conf: next(calls))
    checks = check_kafka(KafkaConnection(bootstrap_servers="fake:9092"),
                         TopicSettings(prefix=PREFIX, partitions=PARTITIONS, **settings), stream_topics)
    return {c.name: c for c in checks}


def test_a_problem_is_placed_by_its_topic_not_by_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [*DECLARED, ODD]
    admins = [Admin(names, min_insync={ODD: 2}) for _ in range(3)]
    checks = _doctor(monkeypatch, admins, [ODD])
    assert checks["stream topics"].status == "fail"
    assert checks["stream topics"].detail == f"{ODD} has min.insync.replicas 2, not 1"
    paysync_topic = checks[f"topic {PREFIX}stripe.events"]
    assert paysync_topic.status == "ok", paysync_topic  # was: fail, "x has min.insync.replicas 2, not 1"
    assert [n for n, c in checks.items() if c.status == "fail"] == ["stream topics"]


def test_a_problem_about_no_topic_fails_the_replication_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # three brokers when the replication is resolved (factor 3, min.insync 2 from the settings), one left when the
    # start-up check runs: its factor is 1, below the min.insync.replicas 2 of the settings (about no one topic)
    admins = [Admin(DECLARED, brokers=3), Admin(DECLARED, brokers=3), Admin(DECLARED, brokers=1)]
    checks = _doctor(monkeypatch, admins, [], min_insync_replicas=2)
    failed = {n: c.detail for n, c in checks.items() if c.status == "fail"}
    assert failed == {"replication": "min.insync.replicas 2 is above the replication factor 1"}
