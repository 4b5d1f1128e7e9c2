"""Issue 19 (2 and 5), the sink half: the newer status version wins in one batch (`PendingRecord.merge`) and
across batches (`sinks.status_versions`), for the Opportunity/Order status and for `Stripe_Payment__c.Status__c`,
whose writers are a charge and its dispute's outcome. The emulator tests write the real mappings' upserts."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from core.common import EventMeta
from core.config import MappingConfig
from core.mapping import map_object
from core.order import encode_version, version_of
from paysync.paths import REPO_ROOT
from sinks.client import SalesforceClient
from sinks.metrics import SinkMetrics
from sinks.records import Origin, PendingRecord
from sinks.settings import SalesforceSettings, SinkSettings
from sinks.writer import BatchWriter

OPP = "0065g00000AbCdEAAV"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "stripe"
CHARGE_ID = "ch_h3dispute0001"


def _rec(sobject: str, ext_field: str, ext_id: str, fields: dict[str, Any], offset: int = 0) -> PendingRecord:
    return PendingRecord.from_upsert({"sobject": sobject, "external_id_field": ext_field, "external_id": ext_id,
                                      "fields": fields, "parents": []},
                                     Origin("salesforce.upserts", 0, offset, None, b"", None, None))


def _opp(status: str, created: int, event_id: str, offset: int) -> PendingRecord:
    version = encode_version((created, (1, 1, 100, 0, 0, 0), event_id))
    return _rec("Opportunity", "Id", OPP, {"Stripe_Payment_Status__c": status,
                                            "Stripe_Payment_Status_Version__c": version}, offset)


# Task B: one batch ----------------------------------------------------------------------------------------------

def test_an_older_opportunity_status_later_in_the_batch_does_not_replace_the_newer() -> None:
    merged = _opp("Succeeded", 1_700_000_200, "evt_b", offset=1)
    merged.merge(_opp("Failed", 1_700_000_100, "evt_a", offset=2))  # a replayed older write, a later offset
    assert merged.fields["Stripe_Payment_Status__c"] == "Succeeded"
    assert merged.fields["Stripe_Payment_Status_Version__c"].startswith("1700000200:")
    assert [o.offset for o in merged.origins] == [1, 2]  # both messages still commit with the record
    merged.merge(_opp("Refunded", 1_700_000_300, "evt_c", offset=3))
    assert merged.fields["Stripe_Payment_Status__c"] == "Refunded"


def test_an_unversioned_status_later_in_the_batch_is_older_than_a_versioned_one() -> None:
    merged = _opp("Succeeded", 1_700_000_200, "evt_b", offset=1)
    merged.merge(_rec("Opportunity", "Id", OPP, {"Stripe_Payment_Status__c": "Failed"}, offset=2))
    assert merged.fields["Stripe_Payment_Status__c"] == "Succeeded"
    unversioned = _rec("Opportunity", "Id", OPP, {"Stripe_Payment_Status__c": "Failed"}, offset=1)
    unversioned.merge(_opp("Succeeded", 1_700_000_200, "evt_b", offset=2))
    assert unversioned.fields["Stripe_Payment_Status__c"] == "Succeeded"


def test_a_payment_merge_keeps_the_newer_status_pair_and_every_other_later_field() -> None:
    outcome = _rec("Stripe_Payment__c", "Stripe_Charge_Id__c", CHARGE_ID,
                   {"Status__c": "Succeeded", "Status_Version__c": "2/1700000500:6.0.0"}, offset=1)
    outcome.merge(_rec("Stripe_Payment__c", "Stripe_Charge_Id__c", CHARGE_ID,
                       {"Status__c": "Succeeded", "Status_Version__c": "0/1700000000:1.1.1000.0.0.0",
                        "Amount__c": "10.00", "Fee__c": None}, offset=2))
    assert (outcome.fields["Status__c"], outcome.fields["Status_Version__c"]) == ("Succeeded", "2/1700000500:6.0.0")
    assert outcome.fields["Amount__c"] == "10.00" and "Fee__c" in outcome.fields
    disputed = _rec("Stripe_Payment__c", "Stripe_Charge_Id__c", CHARGE_ID,
                    {"Status__c": "Disputed", "Status_Version__c": "1/1700000000:1.1.1000.0.0.1"}, offset=3)
    outcome.merge(disputed)
    assert outcome.fields["Status__c"] == "Succeeded"


# Task A: a charge and its dispute, through the real mappings and the emulator --------------------------------

def _payload(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return dict(data["data"]["object"] if data.get("object") == "event" else data)


def _meta(object_type: str, obj: dict[str, Any], created: int, event_id: str) -> EventMeta:
    return EventMeta(event_id, f"{object_type}.updated", created, None, False,
                     encode_version(version_of(object_type, obj, created, event_id)))


def _story() -> dict[str, list[dict[str, Any]]]:
    """A real succeeded charge, then disputed, then its real dispute opened and won: each step's upserts."""
    ch = copy.deepcopy(_payload("stripe-ruby-mock/charge.succeeded.json"))
    ch.update(id=CHARGE_ID, customer=None, payment_intent=None, invoice=None, metadata={}, disputed=False)
    dp = copy.deepcopy(_payload("stripe-sync-engine/charge_dispute_funds_reinstated.json"))
    dp.update(charge=CHARGE_ID)
    cfg = MappingConfig()
    t = 1_700_000_000
    return {
        "charge": map_object("charge", ch, _meta("charge", ch, t, "evt_1"), cfg),
        "disputed": map_object("charge", dict(ch, disputed=True), _meta("charge", ch, t + 60, "evt_2"), cfg),
        "open": map_object("dispute", dict(dp, status="needs_response"),
                           _meta("dispute", dp, t + 60, "evt_3"), cfg),
        "won": map_object("dispute", dict(dp, status="won"), _meta("dispute", dp, t + 900, "evt_4"), cfg),
    }


def _records(upserts: list[dict[str, Any]], offset: int) -> list[PendingRecord]:
    return [PendingRecord.from_upsert(u, Origin("salesforce.upserts", 0, offset, None, b"", None, None))
            for u in upserts if u["sobject"] == "Stripe_Payment__c"]


@pytest.fixture
def org(tmp_path: Path) -> Iterator[BatchWriter]:
    """A BatchWriter on a fresh strict Salesforce emulator (the package's metadata, Status_Version__c included)."""
    from emulators.salesforce_emulator import start_emulator

    handle = start_emulator(tmp_path / "sf.db", port=0)
    c = handle.credentials
    settings = SinkSettings(sink_retry_base_s=0.01, salesforce=SalesforceSettings(
        salesforce_login_url=handle.base_url, salesforce_ca_bundle=str(handle.ca_cert_path),
        salesforce_client_id=c["client_id"], salesforce_client_secret=c["client_secret"]))
    pool = ThreadPoolExecutor(2)
    try:
        yield BatchWriter(SalesforceClient(settings.salesforce, SinkMetrics()), settings, SinkMetrics(), pool)
    finally:
        pool.shutdown()
        handle.stop()


def _payment(writer: BatchWriter) -> dict[str, Any]:
    rows = writer.client.query("SELECT Status__c, Status_Version__c, Description__c FROM Stripe_Payment__c "
                               f"WHERE Stripe_Charge_Id__c = '{CHARGE_ID}'")
    assert len(rows) == 1, rows
    return rows[0]


def _write(writer: BatchWriter, records: list[PendingRecord]) -> None:
    report = writer.write(records)
    assert not report.dead and not report.retry, (report.dead, report.retry)


def test_a_won_dispute_leaves_the_payment_its_charge_s_status_in_salesforce(org: BatchWriter) -> None:
    story = _story()
    for offset, step in enumerate(("charge", "disputed", "open")):
        _write(org, _records(story[step], offset))
    assert _payment(org)["Status__c"] == "Disputed"
    _write(org, _records(story["won"], 3))
    won = _payment(org)
    assert won["Status__c"] == "Succeeded" and won["Status_Version__c"].startswith("2/")
    # crash replay: the pre-dispute charge (disputed=false, succeeded, earlier version) and the disputed one again
    for offset, step in enumerate(("charge", "disputed"), start=4):
        _write(org, _records(story[step], offset))
        assert (_payment(org)["Status__c"], _payment(org)["Status_Version__c"]) == ("Succeeded", won["Status_Version__c"])
    # a newer charge snapshot (still disputed=true): its status is older than the outcome, its other fields land
    renamed = copy.deepcopy(story["disputed"])
    for u in renamed:
        u["fields"]["Description__c"] = "Renamed after the dispute"
    _write(org, _records(renamed, 6))
    assert _payment(org)["Status__c"] == "Succeeded"
    assert _payment(org)["Description__c"] == "Renamed after the dispute"


def test_one_batch_in_any_offset_order_ends_with_the_outcome(org: BatchWriter) -> None:
    story = _story()
    for seed in range(3):
        messages = [r for offset, step in enumerate(("charge", "disputed", "open", "won", "charge", "disputed"))
                    for r in _records(story[step], offset)]
        random.Random(seed).shuffle(messages)
        merged = messages[0]
        for later in messages[1:]:
            merged.merge(later)
        _write(org, [merged])
        assert _payment(org)["Status__c"] == "Succeeded", seed


def test_the_guard_takes_out_an_older_payment_status_and_rewrites_an_equal_one() -> None:
    """Older: the status pair is taken out, the rest is written (or the write dropped when only identity fields
    remain). Equal: the same Stripe state, written again — `reconcile --repair` heals a hand-edited status."""
    from sinks import status_versions

    class Org:
        def query(self, soql: str) -> list[dict[str, Any]]:
            assert "FROM Stripe_Payment__c WHERE Stripe_Charge_Id__c IN" in soql
            return [{"Stripe_Charge_Id__c": CHARGE_ID, "Status_Version__c": "2/1700000500:6.0.0"}]

    replay = _rec("Stripe_Payment__c", "Stripe_Charge_Id__c", CHARGE_ID,
                  {"Status__c": "Disputed", "Status_Version__c": "1/1700000000:1.1.1000.0.0.1", "Description__c": "x"})
    bare = _rec("Stripe_Payment__c", "Stripe_Charge_Id__c", CHARGE_ID,
                {"Status__c": "Succeeded", "Status_Version__c": "0/1700000000:1.1.1000.0.0.0", "Livemode__c": False})
    repair = _rec("Stripe_Payment__c", "Stripe_Charge_Id__c", CHARGE_ID,
                  {"Status__c": "Succeeded", "Status_Version__c": "2/1700000500:6.0.0"})
    keep, stale, retry = status_versions.guard(Org(), [replay, bare, repair])
    assert [id(r) for r in keep] == [id(replay), id(repair)] and stale == [bare] and retry == []
    assert replay.fields == {"Description__c": "x"}
    assert repair.fields["Status__c"] == "Succeeded"
