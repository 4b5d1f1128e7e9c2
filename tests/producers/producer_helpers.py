"""Helpers (and fixtures, re-exported by conftest.py) for the producer tests: events, signatures, a receiver subprocess, reading topics back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from confluent_kafka import Consumer, TopicPartition

from paysync.net import free_port
from paysync.codec import AvroCodec
from paysync.topics import create_topics

REPO = Path(__file__).resolve().parents[2]
SECRET = "whsec_test_" + "a1b2c3d4e5f6"
OLD_SECRET = "whsec_test_" + "rotated00000"


def make_event(object_type: str = "charge", event_type: str = "charge.succeeded", **extra: Any) -> dict[str, Any]:
    """A snapshot event about a fresh object (unique ids)."""
    oid = {"charge": "ch_", "refund": "re_", "dispute": "dp_", "customer": "cus_"}.get(object_type, "obj_")
    obj: dict[str, Any] = {"id": oid + uuid.uuid4().hex[:14], "object": object_type, "amount": 1050, "currency": "usd"}
    obj.update(extra.pop("object_fields", {}))
    event = {"id": "evt_" + uuid.uuid4().hex, "object": "event", "api_version": "2026-10-28.endive",
             "created": int(time.time()), "livemode": False, "type": event_type, "data": {"object": obj},
             "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}}
    event.update(extra)
    return event


def signed_headers(body: str, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)}


def read_topic(bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool] | None = None,
               timeout: float = 20.0, schema: str = "paysync.StripeEventEnvelope") -> list[dict[str, Any]]:
    """Every record of `topic` (decoded, with `_key`); waits until `until(records)` or the end of the topic."""
    codec = AvroCodec()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-" + uuid.uuid4().hex,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 0})
    try:
        md = consumer.list_topics(topic, timeout=10)
        parts = sorted(md.topics[topic].partitions) if topic in md.topics else []
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                rec = codec.decode(msg.value(), schema)
                rec["_key"] = msg.key().decode()
                rec["_partition"] = msg.partition()
                records.append(rec)
                continue
            if until is not None:
                if until(records):
                    return records
                continue
            ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1] for p in parts]
            positions = [tp.offset for tp in consumer.position([TopicPartition(topic, p) for p in parts])]
            if all(pos >= end or (pos < 0 and end == 0) for pos, end in zip(positions, ends)):
                return records
        return records
    finally:
        consumer.close()


@pytest.fixture
def topics(kafka_bootstrap: str, topic_prefix: str) -> str:
    create_topics({"bootstrap.servers": kafka_bootstrap}, topic_prefix, partitions=3)
    return topic_prefix


class Receiver:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, metrics_port: int, log: Path) -> None:
        self.proc, self.port, self.metrics_port, self.log = proc, port, metrics_port, log
        self.url = f"http://127.0.0.1:{port}/webhooks/stripe"
        self.base = f"http://127.0.0.1:{port}"

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"receiver exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("receiver did not become healthy")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_receiver(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Start `paysync webhook` subprocesses; every one is killed at teardown."""
    started: list[Receiver] = []

    def start(bootstrap: str, prefix: str, **env: str) -> Receiver:
        port, metrics_port = free_port(), free_port()
        log = tmp_path / f"receiver-{port}.log"
        full_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PAYSYNC_TOPIC_PREFIX": prefix,
                    "PAYSYNC_WEBHOOK_SECRETS": f"{SECRET},{OLD_SECRET}", **env}
        proc = subprocess.Popen(
            [str(REPO / ".venv/bin/paysync"), "webhook", "--port", str(port), "--metrics-port", str(metrics_port)],
            env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        receiver = Receiver(proc, port, metrics_port, log)
        started.append(receiver)
        receiver.wait_healthy()
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def post(client: httpx.Client, url: str, event: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body = json.dumps(event)
    return client.post(url, content=body, headers=signed_headers(body, secret))


__all__ = ["SECRET", "OLD_SECRET", "make_event", "signed_headers", "read_topic", "post", "sys"]


async def asgi_request(app: Any, method: str, path: str, body: bytes = b"",
                       headers: dict[str, str] | list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[str, Any]]:
    """Drive one HTTP request through an ASGI app (the protocol uvicorn speaks); returns (status, JSON body)."""
    if isinstance(headers, dict):
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    else:
        raw_headers = list(headers or [])
    scope = {"type": "http", "method": method, "path": path, "headers": raw_headers, "query_string": b""}
    sent = False
    out: dict[str, Any] = {"status": None, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], json.loads(out["body"])


class AckingPublisher:
    """The receiver's publisher without a broker: acknowledges at once and keeps (topic, key, value)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    def publish(self, topic: str, key: str, value: bytes) -> asyncio.Future[None]:
        self.records.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def broker_reachable(self, timeout: float = 1.0) -> bool:
        return True


class InProcessReceiver:
    """The receiver app with a real KafkaPublisher, driven without HTTP (for fast and fuzz tests)."""

    def __init__(self, bootstrap: str, prefix: str, **app_kwargs: Any) -> None:
        import asyncio

        from producers.publisher import KafkaPublisher, producer_config
        from producers.webhook.app import WebhookApp

        self.loop = asyncio.new_event_loop()
        self.publisher = KafkaPublisher(producer_config({"bootstrap.servers": bootstrap}, 4000)).start()
        kwargs: dict[str, Any] = {"secrets": [SECRET.encode(), OLD_SECRET.encode()], "topic_prefix": prefix}
        kwargs.update(app_kwargs)
        self.app = WebhookApp(publisher=self.publisher, **kwargs)

    def request(self, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict[str, Any]]:
        return self.loop.run_until_complete(asgi_request(self.app, method, path, body, headers))

    def deliver(self, event: dict[str, Any], secret: str = SECRET, timestamp: int | None = None
                ) -> tuple[int, dict[str, Any]]:
        body = json.dumps(event)
        return self.request("POST", "/webhooks/stripe", body.encode(), signed_headers(body, secret, timestamp))

    def close(self) -> None:
        self.publisher.close()
        self.loop.close()


@pytest.fixture
def inproc(kafka_bootstrap: str, topics: str) -> Iterator[InProcessReceiver]:
    receiver = InProcessReceiver(kafka_bootstrap, topics)
    yield receiver
    receiver.close()
