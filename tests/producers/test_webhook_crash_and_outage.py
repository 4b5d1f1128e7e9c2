"""The receiver as a process: SIGKILL mid-burst loses nothing acknowledged; a broker outage is 503s, then retries land."""

from __future__ import annotations

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from producer_helpers import Receiver, make_event, post, read_topic

from ops.broker import BrokerConfig, start, stop
from paysync.net import free_port
from paysync.topics import STRIPE_EVENTS, create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_metrics_endpoint_counts(start_receiver: Callable[..., Receiver], kafka_bootstrap: str, topics: str) -> None:
    receiver = start_receiver(kafka_bootstrap, topics)
    with httpx.Client() as client:
        assert post(client, receiver.url, make_event()).status_code == 200
        assert post(client, receiver.url, make_event(), secret="whsec_forged").status_code == 400
        assert client.get(receiver.base + "/readyz").status_code == 200
        text = client.get(f"http://127.0.0.1:{receiver.metrics_port}/metrics").text
    assert "paysync_webhook_received_total 2.0" in text
    assert "paysync_webhook_accepted_total 1.0" in text
    assert 'paysync_webhook_rejected_total{reason="bad_signature"} 1.0' in text
    assert "paysync_webhook_publish_seconds_count 1.0" in text


def test_sigkill_mid_burst_loses_no_acknowledged_event(
        start_receiver: Callable[..., Receiver], kafka_bootstrap: str, topics: str) -> None:
    receiver = start_receiver(kafka_bootstrap, topics)
    events = [make_event() for _ in range(3000)]
    acked: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def deliver(chunk: list[dict[str, Any]]) -> None:
        with httpx.Client(timeout=10) as client:
            for event in chunk:
                try:
                    response = post(client, receiver.url, event)
                except httpx.HTTPError:
                    return  # the receiver is gone
                if response.status_code == 200:
                    with lock:
                        acked.append(event["id"])
                        if len(acked) == 400:
                            receiver.proc.kill()  # SIGKILL, mid-burst
                            killed.set()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(deliver, [events[i::16] for i in range(16)]))
    assert killed.is_set(), "the burst ended before the kill"
    assert len(acked) < len(events)
    records = read_topic(kafka_bootstrap, STRIPE_EVENTS.full_name(topics))
    on_kafka = {r["event_id"] for r in records}
    missing = set(acked) - on_kafka
    assert not missing, f"{len(missing)} acknowledged events are not on Kafka"
    assert len(records) == len(on_kafka)  # one delivery each, no duplicates


@pytest.fixture
def private_broker(tmp_path: Path) -> Any:
    cfg = BrokerConfig(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka", heap="384m")
    try:
        start(cfg, fresh=True, timeout=120)
    except Exception as exc:  # noqa: BLE001 - no Java/Maven here: this test cannot run
        pytest.skip(f"cannot start a private broker: {exc}")
    yield cfg
    stop(cfg)
    shutil.rmtree(cfg.data_dir, ignore_errors=True)


def test_broker_outage_gives_503_then_stripe_retries_land_everything(
        start_receiver: Callable[..., Receiver], private_broker: BrokerConfig, topic_prefix: str) -> None:
    bootstrap = private_broker.bootstrap
    create_topics({"bootstrap.servers": bootstrap}, topic_prefix, partitions=3)
    receiver = start_receiver(bootstrap, topic_prefix, PAYSYNC_WEBHOOK_PUBLISH_TIMEOUT_S="2")
    before = [make_event() for _ in range(5)]
    during = [make_event() for _ in range(8)]
    with httpx.Client(timeout=15) as client:
        assert all(post(client, receiver.url, e).status_code == 200 for e in before)
        stop(private_broker, grace=20)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda e: post(httpx.Client(timeout=15), receiver.url, e), during))
        assert [r.status_code for r in statuses] == [503] * len(during)
        assert {r.json()["error"] for r in statuses} == {"publish_failed"}
        assert client.get(receiver.base + "/readyz").status_code == 503
        start(private_broker, timeout=120)
        pending = list(during)
        for _attempt in range(30):  # Stripe retries every 503'd delivery
            pending = [e for e in pending if post(client, receiver.url, e).status_code != 200]
            if not pending:
                break
        assert not pending
        assert client.get(receiver.base + "/readyz").status_code == 200
    wanted = {e["id"] for e in before + during}
    records = read_topic(bootstrap, STRIPE_EVENTS.full_name(topic_prefix),
                         until=lambda r: wanted <= {x["event_id"] for x in r})
    assert wanted <= {r["event_id"] for r in records}
    assert all(json.loads(r["raw_event"])["id"] == r["event_id"] for r in records)
