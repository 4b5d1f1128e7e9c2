"""Issue 19 (5): no Opportunity/Order payment status goes back to an older one, live or replayed."""

from __future__ import annotations

from typing import Any

from core.version import encode_version
from sinks import status_versions
from sinks.records import Origin, PendingRecord

OPP = "0065g00000AbCdEAAV"


class FakeOrg:
    """Answers the guard's SOQL with the versions it holds; counts the calls."""

    def __init__(self, versions: dict[str, str | None]) -> None:
        self.versions = versions
        self.queries: list[str] = []

    def query(self, soql: str) -> list[dict[str, Any]]:
        self.queries.append(soql)
        return [{"Id": i, "Stripe_Payment_Status_Version__c": v} for i, v in self.versions.items() if f"'{i}'" in soql]


def _status_write(status: str, created: int, event_id: str, record_id: str = OPP) -> PendingRecord:
    version = encode_version((created, (1, 1, 100, 0, 0, 0), event_id))
    upsert = {"sobject": "Opportunity", "external_id_field": "Id", "external_id": record_id, "parents": [],
              "fields": {"Stripe_Payment_Status__c": status, "Stripe_Payment_Status_Version__c": version}}
    return PendingRecord.from_upsert(upsert, _origin())


def _origin() -> Origin:
    return Origin("salesforce.upserts", 0, 0, None, None, None, None)


def test_a_late_failed_attempt_does_not_overwrite_succeeded() -> None:
    succeeded = encode_version((1_700_000_200, (1, 1, 100, 0, 0, 0), "evt_b"))
    org = FakeOrg({OPP: succeeded})
    late_failure = _status_write("Failed", 1_700_000_100, "evt_a")
    keep, stale, retry = status_versions.guard(org, [late_failure])
    assert (keep, stale, retry) == ([], [late_failure], [])
    assert len(org.queries) == 1


def test_a_newer_status_and_other_records_are_written() -> None:
    org = FakeOrg({OPP: encode_version((1_700_000_100, (1,), "evt_a"))})
    newer = _status_write("Refunded", 1_700_000_300, "evt_c")
    payment = PendingRecord.from_upsert({"sobject": "Stripe_Payment__c", "external_id_field": "Stripe_Charge_Id__c",
                                         "external_id": "ch_1", "fields": {}, "parents": []}, _origin())
    keep, stale, _ = status_versions.guard(org, [payment, newer])
    assert set(map(id, keep)) == {id(payment), id(newer)} and stale == []


def test_a_replayed_unversioned_write_never_overwrites_a_versioned_status() -> None:
    org = FakeOrg({OPP: encode_version((1_700_000_100, (1,), "evt_a"))})
    old = _status_write("Failed", 1, "evt_old")
    del old.fields["Stripe_Payment_Status_Version__c"]
    _, stale, _ = status_versions.guard(org, [old])
    assert stale == [old]


def test_one_query_per_object_per_batch_and_none_without_status_writes() -> None:
    org = FakeOrg({})
    records = [_status_write("Succeeded", 1_700_000_000 + n, f"evt_{n}", f"0065g00000Ab{n:03d}AAV") for n in range(150)]
    keep, stale, _ = status_versions.guard(org, records)
    assert len(keep) == 150 and not stale and len(org.queries) == 1
    status_versions.guard(org, [])
    assert len(org.queries) == 1


def test_in_batch_merge_keeps_the_newer_status() -> None:
    """What the sink uses in a batch: `PendingRecord.merge`, in either offset order."""
    for first, second in ((("Succeeded", 1_700_000_200, "evt_b"), ("Failed", 1_700_000_100, "evt_a")),
                          (("Failed", 1_700_000_100, "evt_a"), ("Succeeded", 1_700_000_200, "evt_b"))):
        merged = _status_write(*first)
        merged.merge(_status_write(*second))
        assert merged.fields["Stripe_Payment_Status__c"] == "Succeeded"


def test_the_writer_drops_an_older_status_write_and_writes_a_newer_one() -> None:
    """Through BatchWriter: a replayed older upsert reaches no Opportunity; a newer one lands."""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_sink_writer import FakeSalesforce  # the sink tests' fake org

    from sinks.metrics import SinkMetrics
    from sinks.settings import SinkSettings
    from sinks.writer import BatchWriter

    class VersionedOrg(FakeSalesforce):
        def query(self, soql: str) -> list[dict[str, Any]]:
            return [{"Id": ext, "Stripe_Payment_Status_Version__c": row.get("Stripe_Payment_Status_Version__c")}
                    for (sobject, ext), row in self.rows.items() if sobject == "Opportunity" and f"'{ext}'" in soql]

    org = VersionedOrg()
    newest = _status_write("Succeeded", 1_700_000_200, "evt_b")
    org.rows[("Opportunity", OPP)] = dict(newest.fields)
    writer = BatchWriter(org, SinkSettings(sink_bulk_backlog=0), SinkMetrics(), ThreadPoolExecutor(1))  # type: ignore[arg-type]
    report = writer.write([_status_write("Failed", 1_700_000_100, "evt_a")])
    assert len(report.landed) == 1 and not report.dead and not report.retry
    assert org.rows[("Opportunity", OPP)]["Stripe_Payment_Status__c"] == "Succeeded"
    report = writer.write([_status_write("Refunded", 1_700_000_300, "evt_c")])
    assert org.rows[("Opportunity", OPP)]["Stripe_Payment_Status__c"] == "Refunded"
