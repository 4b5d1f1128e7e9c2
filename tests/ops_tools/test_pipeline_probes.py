"""The local pipeline's Kafka probes ride out what a restarted broker answers for a while, and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, KafkaException

from ops.pipeline import _retried


def _failing(codes: list[int], result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(codes):
            raise KafkaException(KafkaError(codes[len(calls) - 1]))
        return result

    return calls, call


def test_transient_broker_errors_are_retried_until_the_answer_comes() -> None:
    calls, call = _failing([KafkaError.LEADER_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                            KafkaError._TIMED_OUT, KafkaError.UNKNOWN_TOPIC_OR_PART])
    assert _retried(call, attempts=5, pause_s=0) == "ok"
    assert len(calls) == 5


def test_a_lasting_or_permanent_error_is_raised() -> None:
    calls, call = _failing([KafkaError.LEADER_NOT_AVAILABLE] * 3)
    with pytest.raises(KafkaException):
        _retried(call, attempts=3, pause_s=0)
    assert len(calls) == 3
    calls, call = _failing([KafkaError.GROUP_AUTHORIZATION_FAILED])
    with pytest.raises(KafkaException):
        _retried(call, attempts=5, pause_s=0)
    assert len(calls) == 1
