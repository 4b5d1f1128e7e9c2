"""Dead letters caused by a Salesforce org missing a field are replayed once the field is deployed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from emulators.salesforce_emulator import DEFAULT_CREDENTIALS, client_session, start_emulator
from paysync.codec import AvroCodec
from paysync.paths import SALESFORCE_METADATA_DIR
from paysync.topics import SALESFORCE_UPSERTS, create_topics

pytestmark = pytest.mark.slow

def upsert(i: int) -> dict[str, object]:
    return {"sobject": "Stripe_Payout__c", "external_id_field": "Stripe_Payout_Id__c", "external_id": f"po_dlq{i}",
            "fields": {"Amount__c": f"{i}.00", "Currency__c": "USD", "Status__c": "Paid",
                       **({"Failure_Message__c": f"note {i}"} if i % 2 else {})},
            "parents": [], "source_event_id": f"evt_{i}", "version": "1:0:evt", "origin_topic": None,
            "origin_partition": None, "origin_offset": None, "ingested_at": None}


def count(handle: object, soql: str) -> int:
    session = client_session(handle)  # type: ignore[arg-type]
    tok = session.post(f"{handle.base_url}/services/oauth2/token", data={  # type: ignore[attr-defined]
        "grant_type": "client_credentials", "client_id": DEFAULT_CREDENTIALS["client_id"],
        "client_secret": DEFAULT_CREDENTIALS["client_secret"]}).json()
    resp = session.get(f"{tok['instance_url']}/services/data/v59.0/query", params={"q": soql},
                       headers={"Authorization": f"Bearer {tok['access_token']}"})
    return int(resp.json()["totalSize"])


def paysync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_dead_letters_are_listed_and_replayed_after_the_fix(kafka_bootstrap: str, topic_prefix: str,
                                                              tmp_path: Path) -> None:
    # An org that has not deployed the latest metadata: Stripe_Payout__c lacks Failure_Message__c.
    old_meta = tmp_path / "metadata"
    shutil.copytree(SALESFORCE_METADATA_DIR, old_meta)
    (old_meta / "objects" / "Stripe_Payout__c" / "fields" / "Failure_Message__c.field-meta.xml").unlink()
    db = tmp_path / "sf" / "org.db"
    sf = start_emulator(db, metadata_dir=str(old_meta))
    port = int(sf.base_url.rsplit(":", 1)[1])
    conf = {"bootstrap.servers": kafka_bootstrap}
    create_topics(conf, topic_prefix, partitions=2)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PAYSYNC_TOPIC_PREFIX": topic_prefix,
           "PAYSYNC_SALESFORCE_LOGIN_URL": sf.base_url, "PAYSYNC_SALESFORCE_CLIENT_ID": DEFAULT_CREDENTIALS["client_id"],
           "PAYSYNC_SALESFORCE_CLIENT_SECRET": DEFAULT_CREDENTIALS["client_secret"],
           "PAYSYNC_SALESFORCE_CA_BUNDLE": str(sf.ca_cert_path), "PAYSYNC_SINK_GROUP_ID": f"{topic_prefix}sink",
           "PAYSYNC_SINK_BATCH_MAX_AGE_S": "0.2"}
    sink = subprocess.Popen([sys.executable, "-m", "ops.cli", "sink"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        codec = AvroCodec()
        producer = Producer(conf)
        for i in range(1, 11):
            rec = upsert(i)
            producer.produce(SALESFORCE_UPSERTS.full_name(topic_prefix), key=f"Stripe_Payout__c:po_dlq{i}".encode(),
                             value=codec.encode(SALESFORCE_UPSERTS.schema, rec))
        assert producer.flush(30) == 0
        deadline = time.monotonic() + 60
        letters: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(letters) < 5:
            out = paysync(env, "dlq", "list", "--json")
            assert out.returncode == 0, out.stderr
            letters = json.loads(out.stdout)
            time.sleep(1)
        assert len(letters) == 5  # the odd ones carry the field the org lacks
        assert {d["code"] for d in letters} == {"INVALID_FIELD"}
        assert {d["origin"]["topic"] for d in letters} == {SALESFORCE_UPSERTS.full_name(topic_prefix)}
        assert all(isinstance(d["origin"]["offset"], int) and d["event_id"] for d in letters)
        assert count(sf, "SELECT Id FROM Stripe_Payout__c") == 5

        # The fix: deploy the field (restart the org on the full metadata, same data), then replay.
        sf.stop()
        sf = start_emulator(db, port=port)
        out = paysync(env, "dlq", "replay", "--code", "INVALID_FIELD")
        assert out.returncode == 0, out.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and count(sf, "SELECT Id FROM Stripe_Payout__c") < 10:
            time.sleep(1)
        assert count(sf, "SELECT Id FROM Stripe_Payout__c") == 10
        assert count(sf, "SELECT Id FROM Stripe_Payout__c WHERE Failure_Message__c = 'note 3'") == 1
        again = paysync(env, "dlq", "replay", "--code", "INVALID_FIELD")
        assert again.returncode == 0 and "skip" in (again.stdout + again.stderr).lower()
    finally:
        sink.send_signal(signal.SIGTERM)
        try:
            sink.wait(20)
        except subprocess.TimeoutExpired:
            sink.kill()
        sf.stop()
