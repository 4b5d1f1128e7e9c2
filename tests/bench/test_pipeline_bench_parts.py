"""The end-to-end benchmark's parts that decide its figures: the histogram quantiles, the /proc CPU reading,
and the naive baseline receiver (signature check, mapping, one REST upsert per record) against the emulator."""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
import stripe
from simple_salesforce import Salesforce

from emulators.salesforce_emulator import EmulatorHandle, client_session, start_emulator
from emulators.stripe_simulator import EventRecord, ScenarioParams, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from naive_receiver import NaiveReceiver, NaiveSettings  # noqa: E402
from bench_common import histogram_quantiles, proc_cpu  # noqa: E402

SECRET = "whsec_naive_test"


def _hist(buckets: list[tuple[str, float]]) -> dict[str, Any]:
    return {"h": [({"le": le}, v, "h_bucket") for le, v in buckets]}


def test_quantiles_interpolate_inside_buckets_and_share_under_two_seconds_is_exact() -> None:
    m = _hist([("0.25", 10), ("0.5", 50), ("1.0", 90), ("2.0", 99), ("5.0", 100), ("+Inf", 100)])
    q = histogram_quantiles(m, "h")
    assert q["p50"] == pytest.approx(0.5)
    assert q["p99"] == pytest.approx(2.0)
    assert q["share_le_2s"] == pytest.approx(0.99)
    assert q["count"] == 100


def test_quantiles_of_an_empty_histogram_are_unknown() -> None:
    assert histogram_quantiles({}, "h")["p99"] is None


def test_a_slow_tail_lands_beyond_two_seconds() -> None:
    m = _hist([("0.25", 0), ("0.5", 0), ("1.0", 0), ("2.0", 50), ("5.0", 100), ("+Inf", 100)])
    q = histogram_quantiles(m, "h")
    assert 2.0 < q["p99"] <= 5.0
    assert q["share_le_2s"] == pytest.approx(0.5)


def test_proc_cpu_counts_this_process_and_is_zero_for_a_gone_one() -> None:
    before = proc_cpu(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert proc_cpu(os.getpid()) >= before + 0.2
    assert proc_cpu(2**22 + 12345) == 0.0


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    handle = start_emulator(tmp_path_factory.mktemp("naive") / "org.sqlite3")
    yield handle
    handle.stop()


def _call(app: NaiveReceiver, body: str, signature: str) -> tuple[str, dict[str, Any]]:
    env: dict[str, Any] = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/stripe",
                           "CONTENT_LENGTH": str(len(body.encode())), "HTTP_STRIPE_SIGNATURE": signature,
                           "wsgi.input": io.BytesIO(body.encode())}
    setup_testing_defaults(env)
    seen: dict[str, str] = {}
    out = b"".join(app(env, lambda status, headers: seen.update(status=status)))
    return seen["status"], json.loads(out)


def _charge_event() -> str:
    for record in generate(ScenarioParams(seed=3, events=60, start_time=1_767_225_600)):
        if isinstance(record, EventRecord) and json.loads(record.json)["type"] == "charge.succeeded":
            return record.json
    raise AssertionError("the generator made no charge.succeeded")


def test_naive_receiver_upserts_a_verified_event_and_refuses_a_forged_one(emulator: EmulatorHandle) -> None:
    c = emulator.credentials
    app = NaiveReceiver(NaiveSettings(
        webhook_secrets=["whsec_other", SECRET], salesforce_login_url=emulator.base_url,
        salesforce_client_id=c["client_id"], salesforce_client_secret=c["client_secret"],
        salesforce_ca_bundle=str(emulator.ca_cert_path)))
    body = _charge_event()
    charge_id = json.loads(body)["data"]["object"]["id"]

    status, _ = _call(app, body, stripe.WebhookSignature.generate_signature_header(body, "whsec_forged"))
    assert status.startswith("400")
    status, _ = _call(app, body, stripe.WebhookSignature.generate_signature_header(body, SECRET))
    assert status.startswith("200")

    stats = app.stats()
    assert stats["requests"] == 1 and stats["records"] >= 1 and stats["failures"] == 0
    assert len(stats["latencies"]) == 1 and 0 < stats["latencies"][0] < 30
    sf = Salesforce(username=c["username"], password=c["password"], security_token=c["security_token"],
                    session=client_session(emulator))
    rows = sf.query(f"SELECT Id FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c = '{charge_id}'")["records"]
    assert len(rows) == 1
    calls = emulator.stats()["calls"]
    assert calls["rest"] >= stats["records"]  # one REST call per record (plus parent stubs), no batching
