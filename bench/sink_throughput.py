"""Sink throughput: N upserts through the real broker into the Salesforce emulator, against a naive baseline.

Prints records/s and Salesforce API calls per 1,000 records for
- the sink (batched Collections / Bulk 2.0, parents first), over all N records;
- a naive baseline that upserts one record per call (`PATCH /sobjects/{Obj}/{ExtField}/{id}`), measured on a
  sample in the same run (the per-record rate does not depend on N).

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 .venv/bin/python bench/sink_throughput.py --records 100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from emulators.salesforce_emulator import start_emulator
from paysync.codec import AvroCodec
from paysync.logs import setup_logging
from paysync.produce import produce_waiting
from paysync.settings import KafkaConnection, TopicSettings
from paysync.topics import SALESFORCE_UPSERTS, create_topics
from sinks.client import SalesforceClient
from sinks.metrics import SinkMetrics
from sinks.settings import SalesforceSettings, SinkSettings
from sinks.sink import Sink


def workload(n: int, tag: str) -> list[dict[str, Any]]:
    """n upserts: one Account per 4 records, each followed by three payments of that customer."""
    out: list[dict[str, Any]] = []
    now = int(time.time() * 1000)
    for i in range(n):
        cus = f"cus_{tag}{i // 4}"
        if i % 4 == 0:
            rec = {"sobject": "Account", "external_id_field": "Stripe_Customer_Id__c", "external_id": cus,
                   "fields": {"Name": f"Customer {i // 4}", "Livemode__c": False}, "parents": []}
        else:
            rec = {"sobject": "Stripe_Payment__c", "external_id_field": "Stripe_Charge_Id__c",
                   "external_id": f"ch_{tag}{i}",
                   "fields": {"Amount__c": f"{i % 1000}.25", "Currency__c": "USD", "Status__c": "Succeeded"},
                   "parents": [{"relationship": "Account__r", "sobject": "Account",
                                "external_id_field": "Stripe_Customer_Id__c", "external_id": cus}]}
        rec.update({"source_event_id": f"evt_{tag}{i}", "version": "1:0:x", "origin_topic": None,
                    "origin_partition": None, "origin_offset": None, "ingested_at": now})
        out.append(rec)
    return out


def produce(conf: dict[str, Any], topic: str, records: list[dict[str, Any]]) -> None:
    codec = AvroCodec()
    producer = Producer({**conf, "linger.ms": 50, "batch.size": 1_000_000, "acks": "all"})
    for r in records:
        value = codec.encode(SALESFORCE_UPSERTS.schema, r)
        produce_waiting(producer, topic, value, key=f"{r['sobject']}:{r['external_id']}", poll_s=0.05)
    producer.flush(120)


def api_calls(stats: dict[str, Any]) -> int:
    return sum(v for k, v in stats["calls"].items() if k != "auth")


def _run_sink(settings: SinkSettings, emu: Any, records: list[dict[str, Any]]) -> None:
    """Drain the produced upserts with the real sink; print records/s and API calls per 1,000 records."""
    metrics = SinkMetrics()
    sink = Sink(settings, metrics)
    before = api_calls(emu.stats())
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    started = time.monotonic()
    thread.start()
    landed = 0.0
    while landed < len(records):
        time.sleep(0.5)
        landed = sum(s.value for m in metrics.records.collect() for s in m.samples
                     if s.name.endswith("_total") and s.labels.get("result") == "upserted")
        if time.monotonic() - started > 3600:
            raise SystemExit("sink did not finish in an hour")
    elapsed = time.monotonic() - started
    stop.set()
    thread.join(60)
    calls = api_calls(emu.stats()) - before
    by_path: dict[str, int] = {}
    for m in metrics.records.collect():
        for s in m.samples:
            if s.name.endswith("_total"):
                key = s.labels["path"]
                by_path[key] = by_path.get(key, 0) + int(s.value)
    print(f"sink:     {len(records)} records in {elapsed:.1f}s = {len(records) / elapsed:,.0f} records/s; "
          f"{calls} API calls = {calls * 1000 / len(records):.2f} calls per 1,000 records; by path {by_path}")


def _run_baseline(settings: SinkSettings, emu: Any, count: int) -> None:
    """The naive baseline: one REST upsert per record; print the same figures."""
    client = SalesforceClient(settings.salesforce, SinkMetrics())
    sample = workload(count, "n")
    before = api_calls(emu.stats())
    started = time.monotonic()
    for r in sample:
        body = {k: v for k, v in r["fields"].items()}
        for p in r["parents"]:
            body[p["relationship"]] = {p["external_id_field"]: p["external_id"]}
        client.request("rest", "PATCH", f"sobjects/{r['sobject']}/{r['external_id_field']}/{r['external_id']}",
                       json=body)
    elapsed = time.monotonic() - started
    calls = api_calls(emu.stats()) - before
    print(f"baseline: {len(sample)} records in {elapsed:.1f}s = {len(sample) / elapsed:,.0f} records/s; "
          f"{calls} API calls = {calls * 1000 / len(sample):.0f} calls per 1,000 records")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--baseline-records", type=int, default=2_000)
    ap.add_argument("--bulk-threshold", type=int, default=2_000)
    ap.add_argument("--bulk-queue-s", type=float, default=None, help="emulator: seconds a Bulk job stays queued")
    ap.add_argument("--bulk-records-per-s", type=int, default=None, help="emulator: Bulk processing pace")
    ap.add_argument("--log-level", default="WARNING", help="the sink's log level (stderr)")
    args = ap.parse_args()
    setup_logging(args.log_level)
    os.environ.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    kafka = KafkaConnection()
    create_topics(kafka.confluent_config(), prefix, 6)
    with tempfile.TemporaryDirectory() as tmp:
        pace = {k: v for k, v in (("bulk_queue_s", args.bulk_queue_s),
                                  ("bulk_records_per_s", args.bulk_records_per_s)) if v is not None}
        emu = start_emulator(Path(tmp) / "org.sqlite3", port=0, daily_limit=10_000_000, **pace)
        try:
            creds = emu.credentials
            salesforce = SalesforceSettings(
                salesforce_login_url=emu.base_url, salesforce_client_id=creds["client_id"],
                salesforce_client_secret=creds["client_secret"], salesforce_ca_bundle=str(emu.ca_cert_path))
            settings = SinkSettings(topics=TopicSettings(prefix=prefix), salesforce=salesforce,
                                    sink_group_id=f"{prefix}sink", sink_bulk_threshold=args.bulk_threshold)
            records = workload(args.records, "b")
            t0 = time.monotonic()
            produce(kafka.confluent_config(), SALESFORCE_UPSERTS.full_name(prefix), records)
            print(f"produced {len(records)} upserts in {time.monotonic() - t0:.1f}s")
            _run_sink(settings, emu, records)
            _run_baseline(settings, emu, args.baseline_records)
        finally:
            emu.stop()


if __name__ == "__main__":
    main()
