"""Probes of a running `LocalPipeline` for the adversarial tests: post signed events, produce raw records, SOQL, DLQ."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import requests
from adversarial_helpers import read_raw, signature
from confluent_kafka import Producer

from ops.pipeline import WEBHOOK_SECRETS, LocalPipeline
from paysync.codec import AvroCodec
from paysync.topics import DEAD_LETTERS

_PAN = re.compile(r"(?<![0-9A-Za-z])[2-6](?:[ -]?\d){12,18}(?![0-9A-Za-z])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_numbers(text: str) -> list[str]:
    """Every 13–19-digit Luhn-valid number in `text` (spaces/dashes allowed; not part of an id or a word)."""
    found = []
    for m in _PAN.finditer(text):
        digits = re.sub(r"[ -]", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append(digits)
    return found


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def post_event(p: LocalPipeline, event: dict[str, Any]) -> None:
    """Deliver one validly signed webhook to the pipeline's receiver; it must be accepted."""
    body = json.dumps(event, ensure_ascii=False).encode("utf-8")
    resp = httpx.post(f"http://127.0.0.1:{p.ports['webhook']}/webhooks/stripe", content=body, timeout=15,
                      headers={"Content-Type": "application/json",
                               "Stripe-Signature": signature(body, WEBHOOK_SECRETS[1])})
    assert resp.status_code == 200, resp.text


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]], partition: int = 0
            ) -> list[int]:
    """Produce (key, value) records in order to one partition; returns their offsets."""
    offsets: list[int] = []
    errors: list[Any] = []

    def report(err: Any, msg: Any) -> None:
        (errors.append(err) if err is not None else offsets.append(msg.offset()))

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})
    for key, value in records:
        producer.produce(topic, key=key, value=value, partition=partition, on_delivery=report)
    assert producer.flush(30) == 0 and not errors, errors
    return offsets


class Salesforce:
    """SOQL against the pipeline's Salesforce emulator (a client-credentials session)."""

    def __init__(self, p: LocalPipeline) -> None:
        self.session = requests.Session()
        self.session.verify = str(p.sf.ca_cert_path)
        self.session.trust_env = False
        resp = self.session.post(f"{p.sf.base_url}/services/oauth2/token", timeout=30, data={
            "grant_type": "client_credentials", "client_id": p.env["PAYSYNC_SALESFORCE_CLIENT_ID"],
            "client_secret": p.env["PAYSYNC_SALESFORCE_CLIENT_SECRET"]})
        resp.raise_for_status()
        body = resp.json()
        self.base = body["instance_url"]
        self.session.headers["Authorization"] = f"Bearer {body['access_token']}"

    def query(self, soql: str) -> list[dict[str, Any]]:
        resp = self.session.get(f"{self.base}/services/data/v59.0/query", params={"q": soql}, timeout=30)
        resp.raise_for_status()
        return list(resp.json()["records"])

    def one(self, soql: str) -> dict[str, Any] | None:
        rows = self.query(soql)
        return rows[0] if rows else None


def dead_letters(p: LocalPipeline) -> list[dict[str, Any]]:
    """Every record of the pipeline's dead-letter topic, decoded."""
    codec = AvroCodec()
    return [codec.decode(m.value(), DEAD_LETTERS.schema)
            for m in read_raw(p.bootstrap, p.topic(DEAD_LETTERS.name))]


def emulator_texts(p: LocalPipeline) -> list[str]:
    """Every text value stored by the Salesforce emulator (its SQLite file), for scanning."""
    conn = sqlite3.connect(f"file:{p.sf.db_path}?mode=ro", uri=True)
    try:
        out = []
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - table names from sqlite itself
                out.extend(str(v) for v in row if isinstance(v, (str, bytes)))
        return out
    finally:
        conn.close()
