"""The components' start-up check of topic replication (`paysync.topics.check_replication`) against a fake admin
client on a fake clock: its calls share ONE deadline, the broker config is asked of the broker that just answered,
and a transient client error (a broker restarting) is asked again. Before: each call had its own timeout (a check
of 15 s could take several times that), the lowest broker id was asked (a node killed or restarting still listed:
15 s lost), and a metadata call that failed once made the check give up, so a component started on topics it should
have refused (`paysync sink` then ran until its test's 120 s timeout)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource

import paysync.topics as topics
from paysync.topics import OFFSETS_TOPIC, ReplicationError, check_replication, paysync_topic_names, replication_problem

PREFIX = "t."
NAMES = paysync_topic_names(PREFIX)


class Clock:
    """`time` for paysync.topics: monotonic() reads it, sleep() and the fake calls move it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _metadata(orig: int = 2) -> Any:
    def topic(replicas: int) -> Any:
        return SimpleNamespace(partitions={0: SimpleNamespace(replicas=list(range(1, replicas + 1)))}, error=None)

    return SimpleNamespace(brokers={1: None, 2: None, 3: None}, orig_broker_id=orig,
                           topics={**{n: topic(1) for n in NAMES}, OFFSETS_TOPIC: topic(3)})


class Admin:
    """Answers at once, except the calls `hangs` names: those wait their whole timeout, then fail _TIMED_OUT (a node
    that accepts the connection and does not answer). `fail_metadata` first metadata calls fail _TRANSPORT."""

    def __init__(self, clock: Clock, hangs: frozenset[str] = frozenset(), fail_metadata: int = 0) -> None:
        self.clock, self.hangs, self.fail_metadata = clock, hangs, fail_metadata
        self.calls: list[tuple[str, float]] = []  # (call, the timeout it was given)

    def _hang(self, call: str, timeout: float) -> None:
        self.calls.append((call, timeout))
        if call in self.hangs or "*" in self.hangs and self.calls[1:]:
            self.clock.now += timeout
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT))
        self.clock.now += 0.01

    def list_topics(self, timeout: float) -> Any:
        if self.fail_metadata:
            self.fail_metadata -= 1
            self.calls.append(("metadata", timeout))
            self.clock.now += 0.01
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        self._hang("metadata", timeout)
        return _metadata()

    def describe_configs(self, resources: list[Any], request_timeout: float) -> dict[Any, Any]:
        (resource,) = resources
        kind = "broker" if resource.restype == ConfigResource.Type.BROKER else "topic"
        call = f"{kind} {resource.name}"

        def result(timeout: float) -> dict[str, Any]:
            self._hang(call, request_timeout)
            return {"default.replication.factor": SimpleNamespace(value="3"),
                    "min.insync.replicas": SimpleNamespace(value="1")}

        return {resource: SimpleNamespace(result=result)}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(topics, "time", c)
    return c


def _use(monkeypatch: pytest.MonkeyPatch, admin: Admin) -> Admin:
    monkeypatch.setattr(topics, "_admin", lambda conf: admin)
    return admin


def test_the_calls_share_one_deadline(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _use(monkeypatch, Admin(clock, hangs=frozenset({"*"})))  # the first metadata answers, then all hang
    start = clock.now
    with pytest.raises(KafkaException):
        check_replication({}, NAMES, timeout=15.0)
    assert clock.now - start <= 15.0 + 0.1, admin.calls  # was 30 s: the broker config 15 s, then the metadata 15 s
    assert replication_problem({}, NAMES, None, None, timeout=15.0) is None  # the cluster did not answer: not checked
    assert clock.now - start <= 2 * (15.0 + 0.1)


def test_the_broker_config_is_asked_of_the_broker_that_answered(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _use(monkeypatch, Admin(clock, hangs=frozenset({"broker 1"})))  # node 1 restarting, still in the metadata
    start = clock.now
    with pytest.raises(ReplicationError) as err:
        check_replication({}, NAMES, timeout=15.0)
    assert [c for c, _ in admin.calls if c.startswith("broker")] == ["broker 2"]
    assert clock.now - start < 1.0  # was 15 s waiting for node 1
    assert err.value.problems == [f"{n} has replication factor 1, not 3" for n in sorted(NAMES)] + \
        [f"{n} has min.insync.replicas 1, not 2" for n in sorted(NAMES)]


def test_a_metadata_call_failing_once_is_asked_again(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _use(monkeypatch, Admin(clock, fail_metadata=1))  # the broker asked first was restarting
    problem = replication_problem({}, NAMES, None, None, timeout=15.0)
    assert problem is not None and f"{PREFIX}stripe.events has replication factor 1, not 3" in problem  # was None
    assert [c for c, _ in admin.calls[:2]] == ["metadata", "metadata"]
