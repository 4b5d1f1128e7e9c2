"""Fuzzing the receiver with random bodies and headers (signed and not): never a 500, never an exception."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from producer_helpers import SECRET, InProcessReceiver

from paysync.topics import create_topics

pytestmark = pytest.mark.kafka

ALLOWED = {200, 400, 413, 415}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"object": st.sampled_from(["event", "v2.core.event", "charge"])},
    optional={
        "id": json_values | st.just("evt_fuzz"),
        "type": json_values | st.just("charge.succeeded"),
        "created": json_values | st.integers(),
        "livemode": json_values,
        "account": json_values,
        "context": json_values,
        "api_version": json_values,
        "related_object": json_values | st.fixed_dictionaries({"id": json_values, "type": json_values}),
        "data": json_values | st.fixed_dictionaries({"object": json_values | st.fixed_dictionaries(
            {"id": json_values, "object": json_values, "charge": json_values})}),
    },
)
header_names = st.sampled_from([b"content-type", b"stripe-signature", b"content-length", b"x-other"])
raw_headers = st.lists(st.tuples(header_names, st.binary(max_size=80)), max_size=5)


def _signed(body: bytes, ts: int) -> list[tuple[bytes, bytes]]:
    sig = hmac.new(SECRET.encode(), b"%d." % ts + body, hashlib.sha256).hexdigest()
    return [(b"content-type", b"application/json"), (b"stripe-signature", f"t={ts},v1={sig}".encode())]


@pytest.fixture(scope="module")
def fuzz_receiver(kafka_bootstrap: str) -> Any:
    prefix = f"fuzz{uuid.uuid4().hex[:8]}."
    create_topics({"bootstrap.servers": kafka_bootstrap}, prefix, partitions=1)
    receiver = InProcessReceiver(kafka_bootstrap, prefix, max_body_bytes=4096)
    yield receiver
    receiver.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=300), headers=raw_headers, path=st.sampled_from(["/webhooks/stripe", "/x"]))
def test_random_requests_never_500(fuzz_receiver: InProcessReceiver, body: bytes,
                                   headers: list[tuple[bytes, bytes]], path: str) -> None:
    status, answer = fuzz_receiver.request("POST", path, body, headers)
    assert status in ALLOWED | {404}
    assert isinstance(answer, dict)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(event=event_like, skew=st.integers(min_value=-400, max_value=400))
def test_signed_random_events_are_published_or_refused_cleanly(
        fuzz_receiver: InProcessReceiver, event: dict[str, Any], skew: int) -> None:
    body = json.dumps(event).encode()
    status, answer = fuzz_receiver.request("POST", "/webhooks/stripe", body, _signed(body, int(time.time()) + skew))
    assert status in ALLOWED, answer
    if status == 200:
        assert answer["event_id"] == event["id"]
    else:
        assert answer["error"] and answer["message"]
