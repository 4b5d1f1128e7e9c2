"""Helpers of the adversarial tests: real Stripe events, signing, a receiver subprocess, reading topics raw."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from paysync.net import free_port

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "stripe" / "stripe-ruby-mock"  # captured from ../shared (SOURCES.md)
SECRET = "whsec_adv" + "Q7mZt2pLx9Kc4Rw8"  # never a real secret: built at run time, scanned for later
OLD_SECRET = "whsec_adv" + "rotatedN3vY6bH1"
REAL_EVENT_FILES = ("charge.succeeded", "charge.failed", "customer.created", "charge.refunded", "payout.paid",
                    "invoice.paid", "charge.dispute.created", "payment_intent.succeeded")


def real_events() -> list[dict[str, Any]]:
    """Real Stripe event envelopes (stripe-ruby-mock fixtures, captured into the repository)."""
    out = []
    for name in REAL_EVENT_FILES:
        path = FIXTURES / f"{name}.json"
        if path.is_file():
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def fresh(event: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """A copy of a real event with a unique event id (and object id) and a current `created`."""
    out = copy.deepcopy(event)
    out["id"] = "evt_adv" + uuid.uuid4().hex
    out["created"] = created or int(time.time())
    obj = out["data"]["object"]
    if isinstance(obj.get("id"), str):
        prefix = obj["id"].split("_", 1)[0]
        obj["id"] = f"{prefix}_adv{uuid.uuid4().hex[:16]}"
    return out


def signature(body: bytes, secret: str, timestamp: int | None = None, scheme: str = "v1") -> str:
    """A `Stripe-Signature` header value for `body`."""
    ts = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), b"%d." % ts + body, hashlib.sha256).hexdigest()
    return f"t={ts},{scheme}={sig}"


def read_raw(bootstrap: str, topic: str, idle_s: float = 1.0, timeout: float = 30.0) -> list[Message]:
    """Every record of `topic` up to the high watermarks taken now."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"adv-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 0})
    try:
        md = consumer.list_topics(topic, timeout=10)
        if topic not in md.topics:
            return []
        parts = sorted(md.topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.2):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF and msg.offset() >= ends[msg.partition()]:
                        todo.discard(msg.partition())
                    continue
                if msg.offset() < ends[msg.partition()]:
                    out.append(msg)
                if msg.offset() >= ends[msg.partition()] - 1:
                    todo.discard(msg.partition())
        assert not todo, f"{topic}: partitions {todo} not read to their end"
        return out
    finally:
        consumer.close()


class ReceiverProcess:
    """`paysync webhook` in a subprocess; `stop()` kills it."""

    def __init__(self, bootstrap: str, prefix: str, log: Path, **env: str) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        full_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PAYSYNC_TOPIC_PREFIX": prefix,
                    "PAYSYNC_WEBHOOK_SECRETS": f"{SECRET},{OLD_SECRET}", **env}
        self.log = log
        self.proc = subprocess.Popen(
            [str(REPO / ".venv/bin/paysync"), "webhook", "--port", str(self.port),
             "--metrics-port", str(self.metrics_port)],
            env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + "/webhooks/stripe"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), f"receiver exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("receiver did not become ready")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(10)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]
