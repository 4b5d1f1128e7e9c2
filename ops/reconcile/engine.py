"""Reconcile: Stripe's truth vs Salesforce's records, and the repair of drift through the sink's topic."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

import requests

from paysync.codec import AvroCodec
from paysync.topics import SALESFORCE_UPSERTS
from sinks.auth import Authenticator
from core.config import MappingConfig
from sinks.settings import SalesforceSettings

from ops.reconcile.compare import Drift, compare
from ops.reconcile.expected import expected_records
from ops.reconcile.refusals import open_sync_errors, split_refused
from ops.reconcile.report import payout_totals, summary
from ops.reconcile.salesforce_side import EXTERNAL_ID_FIELDS, SalesforceReader

Key = tuple[str, str]


def salesforce_reader(settings: SalesforceSettings) -> SalesforceReader:
    """A SOQL reader logged in with the sink's configuration."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override `verify`
    if settings.salesforce_ca_bundle:
        session.verify = settings.salesforce_ca_bundle
    auth = Authenticator(settings, session)
    token = auth.login()

    def relogin() -> tuple[str, str]:
        fresh = auth.login()
        return fresh.access_token, fresh.instance_url

    return SalesforceReader(session, lambda: (token.access_token, token.instance_url),
                            settings.salesforce_api_version, relogin=relogin)


def reconcile(truth: Iterable[dict[str, Any]], reader: SalesforceReader, cfg: MappingConfig,
              since: int | None = None, until: int | None = None, progress: bool = False) -> dict[str, Any]:
    """The full report: summary, unexplained drifts and refusals (drifts of records with an open
    `Stripe_Sync_Error__c` row, see `refusals`), per-currency payout totals; `context` for repair (every drift)."""
    expected, context = expected_records(truth, cfg, since, until)
    fields: dict[str, set[str]] = {}
    for (sobject, _), rec in expected.items():
        fields.setdefault(sobject, set()).update(rec)
    actual: dict[Key, dict[str, Any]] = {}
    sobjects = [s for s in EXTERNAL_ID_FIELDS if s in fields or s == "Stripe_Payout__c"]
    for i, sobject in enumerate(sobjects, 1):
        if progress:
            sys.stderr.write(f"\r[{'#' * i}{'.' * (len(sobjects) - i)}] reading {sobject:<32}")
            sys.stderr.flush()
        wanted = fields.get(sobject, set()) | ({"Currency__c", "Amount__c", "Net__c", "Reconciliation_Status__c"}
                                               if sobject == "Stripe_Payout__c" else set())
        actual.update(reader.records(sobject, present_fields(wanted, reader.field_names(sobject))))
    if progress:
        sys.stderr.write("\n")
    scope = set(sobjects) if since is None and until is None else set()
    # A draft Stripe deleted stays in Salesforce as Deleted (paysync never deletes); Stripe's lists no longer show it
    # A draft deleted before paysync saw it (e.g. before a backfill's events window) is simply absent: not missing
    deleted: set[Key] = context["deleted"]
    drifts = [d for d in compare(expected, actual, scope)
              if not (d.kind == "extra" and actual[(d.sobject, d.external_id)].get("Status__c") == "Deleted")
              and not (d.kind == "missing" and (d.sobject, d.external_id) in deleted)]
    unexplained, refused = split_refused(drifts, open_sync_errors(reader) if drifts else {})
    return {
        "summary": summary(unexplained, len(expected), len(actual), refused=len(refused)),
        "drifts": [d.as_dict() for d in unexplained],
        "refused": [r.as_dict() for r in refused],
        "payout_totals": payout_totals(context["payouts"], actual),
        "salesforce_queries": reader.calls,
        "_drift_objects": drifts,
        "_context": context,
    }


def present_fields(wanted: set[str], in_org: set[str]) -> set[str]:
    """The wanted fields the org has (`Rel__r.Field` when `Rel__c` is there): a field an org lacks (e.g. `Order__c`
    where Orders are off) is not queried, so it reads as empty and drifts only where Stripe has a value for it."""
    def present(name: str) -> bool:
        head = name.split(".", 1)[0]
        return (head[:-3] + "__c" if head.endswith("__r") else head) in in_org
    return {name for name in wanted if present(name)}


def repair(report: dict[str, Any], codec: AvroCodec, producer: Any, topic_prefix: str = "") -> int:
    """Republish, through the sink's topic, the expected upserts of every drifted record; returns how many.

    Extra records (in Salesforce, not in Stripe) are reported, never deleted: paysync does not delete.
    """
    drifts: list[Drift] = report["_drift_objects"]
    upserts: dict[Key, list[dict[str, Any]]] = report["_context"]["upserts"]
    keys = {(d.sobject, d.external_id) for d in drifts if d.kind != "extra"}
    topic = SALESFORCE_UPSERTS.full_name(topic_prefix)
    stamp = f"repair:{int(time.time())}"
    count = 0
    for key in sorted(keys):
        for up in upserts.get(key, []):
            record = {**up, "version": stamp, "origin_topic": None, "origin_partition": None, "origin_offset": None,
                      "ingested_at": int(time.time() * 1000)}
            producer.produce(topic, key=f"{key[0]}:{key[1]}".encode(), value=codec.encode(SALESFORCE_UPSERTS.schema, record))
            count += 1
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("repair upserts were not all acknowledged by Kafka")
    return count
