"""The sink's pure parts: coalescing, batching, ordering, payloads, Bulk results, the error table, offsets."""

from __future__ import annotations

import csv
import io

import pytest

from paysync.outcomes import Outcome
from sinks.batcher import Batcher
from sinks.errors import classify_call, classify_record, parse_bulk_error
from sinks.offsets import OffsetTracker
from sinks.payload import BULK_NULL, bulk_csv, collection_record, parse_csv, stub_record
from sinks.records import Origin, PendingRecord, object_rank

T = "p.salesforce.upserts"


def upsert(sobject: str, ext_field: str, ext_id: str, fields: dict, parents: list | None = None, offset: int = 0,
           partition: int = 0) -> PendingRecord:
    origin = Origin(T, partition, offset, f"{sobject}:{ext_id}".encode(), b"x" * 10, f"evt_{offset}", None)
    return PendingRecord.from_upsert(
        {"sobject": sobject, "external_id_field": ext_field, "external_id": ext_id, "fields": fields,
         "parents": parents or []}, origin)


def test_coalescing_merges_partial_upserts_in_offset_order() -> None:
    b = Batcher(100, 10**6, 60)
    b.add(upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", "ch_1", {"Status__c": "Pending", "Amount__c": "10.00"}, offset=1))
    b.add(upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", "ch_1", {"Fee__c": "0.59", "Net__c": "9.41"},
                 [{"relationship": "Payout__r", "sobject": "Stripe_Payout__c",
                   "external_id_field": "Stripe_Payout_Id__c", "external_id": "po_1"}], offset=2))
    b.add(upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", "ch_1", {"Status__c": "Succeeded"}, offset=3))
    assert len(b) == 1
    (r,) = b.take_ready(now=10**9)
    assert r.fields == {"Status__c": "Succeeded", "Amount__c": "10.00", "Fee__c": "0.59", "Net__c": "9.41"}
    assert set(r.parents) == {"Payout__r"}
    assert [o.offset for o in r.origins] == [1, 2, 3]
    assert len(b) == 0 and b.bytes == 0


def test_batcher_bounds_by_count_bytes_and_age() -> None:
    b = Batcher(max_records=3, max_bytes=10**6, max_age_s=1.0)
    first = upsert("Account", "Stripe_Customer_Id__c", "cus_1", {"Name": "A"})
    t0 = first.first_seen
    b.add(first)
    assert not b.due(now=t0 + 0.5)
    assert b.due(now=t0 + 1.01)
    b.add(upsert("Account", "Stripe_Customer_Id__c", "cus_2", {"Name": "B"}))
    b.add(upsert("Account", "Stripe_Customer_Id__c", "cus_3", {"Name": "C"}))
    assert b.due(now=t0)  # count
    small = Batcher(max_records=100, max_bytes=1024, max_age_s=60)
    for i in range(103):
        small.add(upsert("Account", "Stripe_Customer_Id__c", f"cus_{i}", {}))
    assert small.bytes == 1030 and small.due(now=0)


def test_retries_ride_regular_batches_instead_of_forcing_small_ones() -> None:
    b = Batcher(max_records=100, max_bytes=10**6, max_age_s=1.0)
    retries = []
    for i, delay in enumerate((0.2, 0.35, 0.5, 0.8)):  # jittered retry times, as backoff gives them
        r = upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", f"re_{i}", {})
        b.requeue(r)
        r.not_before = r.first_seen + delay
        retries.append(r)
    t0 = retries[0].first_seen
    assert not any(b.due(now=t0 + dt) for dt in (0.25, 0.4, 0.6, 0.9, 1.15))  # their times came: no flush yet
    assert len(b.take_ready(now=t0 + 0.9)) == 4  # …but any flush takes them
    for r in retries:
        b.requeue(r)
        r.not_before = t0 + 0.5
    assert not b.due(now=t0 + 1.4) and b.due(now=t0 + 1.5)  # alone, a retry flushes a whole max age later


def test_requeued_record_waits_and_absorbs_newer_data() -> None:
    b = Batcher(100, 10**6, 0.1)
    r = upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", "re_1", {"Status__c": "Pending"}, offset=5)
    r.not_before = 100.0
    b.add(upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", "re_1", {"Status__c": "Succeeded"}, offset=9))
    b.requeue(r)  # the newer pending record merges into the older one, keeping the earlier retry time
    (merged,) = b.take_ready(now=50.0)
    assert merged.fields["Status__c"] == "Succeeded" and [o.offset for o in merged.origins] == [5, 9]
    b2 = Batcher(100, 10**6, 0.1)
    r2 = upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", "re_2", {"Status__c": "Pending"}, offset=5)
    r2.not_before = 100.0
    b2.requeue(r2)
    assert b2.take_ready(now=50.0) == []
    b2.add(upsert("Stripe_Refund__c", "Stripe_Refund_Id__c", "re_2", {"Status__c": "Succeeded"}, offset=9))
    (got,) = b2.take_ready(now=100.0)
    assert got.fields["Status__c"] == "Succeeded" and [o.offset for o in got.origins] == [5, 9]


def test_drop_partitions_forgets_only_revoked_records() -> None:
    b = Batcher(100, 10**6, 1)
    b.add(upsert("Account", "Stripe_Customer_Id__c", "cus_1", {}, partition=0))
    b.add(upsert("Account", "Stripe_Customer_Id__c", "cus_2", {}, partition=1))
    dropped = b.drop_partitions({(T, 1)})
    assert [d.external_id for d in dropped] == ["cus_2"] and len(b) == 1


def test_parents_are_written_before_children() -> None:
    order = ["Stripe_Balance_Transaction__c", "Stripe_Refund__c", "Account", "Opportunity", "Stripe_Payment__c",
             "Stripe_Payout__c", "Stripe_Invoice__c", "Stripe_Dispute__c"]
    assert sorted(order, key=object_rank) == [
        "Account", "Stripe_Payout__c", "Stripe_Invoice__c", "Stripe_Payment__c", "Stripe_Refund__c",
        "Stripe_Dispute__c", "Stripe_Balance_Transaction__c", "Opportunity"]


def test_collection_record_nests_parent_references() -> None:
    r = upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", "ch_1", {"Amount__c": "10.50", "Livemode__c": False},
               [{"relationship": "Account__r", "sobject": "Account", "external_id_field": "Stripe_Customer_Id__c",
                 "external_id": "cus_1"}])
    assert collection_record(r) == {
        "attributes": {"type": "Stripe_Payment__c"}, "Stripe_Charge_Id__c": "ch_1", "Amount__c": "10.50",
        "Livemode__c": False,
        "Account__r": {"attributes": {"type": "Account"}, "Stripe_Customer_Id__c": "cus_1"},
    }


def test_bulk_csv_shares_a_header_nulls_and_unchanged() -> None:
    a = upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", "ch_1",
               {"Amount__c": "1000", "Failure_Message__c": None, "Livemode__c": True, "Description__c": 'say "hi", ok'},
               [{"relationship": "Account__r", "sobject": "Account", "external_id_field": "Stripe_Customer_Id__c",
                 "external_id": "cus_1"}])
    b = upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", "ch_2", {"Fee__c": "1.234"})
    rows = list(csv.reader(io.StringIO(bulk_csv([a, b]))))
    header = rows[0]
    assert header[0] == "Stripe_Charge_Id__c" and "Account__r.Stripe_Customer_Id__c" in header
    first = dict(zip(header, rows[1]))
    second = dict(zip(header, rows[2]))
    assert first["Failure_Message__c"] == BULK_NULL and first["Livemode__c"] == "true"
    assert first["Description__c"] == 'say "hi", ok' and first["Amount__c"] == "1000"
    assert first["Fee__c"] == "" and second["Amount__c"] == "" and second["Fee__c"] == "1.234"
    assert second["Account__r.Stripe_Customer_Id__c"] == ""


def test_bulk_results_parse_per_record() -> None:
    ok = parse_csv('"sf__Id","sf__Created","Stripe_Charge_Id__c"\n"a01","true","ch_1"\n')
    assert ok == [{"sf__Id": "a01", "sf__Created": "true", "Stripe_Charge_Id__c": "ch_1"}]
    assert parse_csv("") == []
    assert parse_bulk_error("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --") == (
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]")
    code, msg = parse_bulk_error("INVALID_FIELD:Foreign key external ID: cus_9 not found for field "
                                 "Stripe_Customer_Id__c in entity Account:Account__r --")
    assert code == "INVALID_FIELD" and classify_record(code, msg).missing_parent


def test_stub_record_fills_required_name_and_refuses_ids() -> None:
    assert stub_record("Account", "Stripe_Customer_Id__c", "cus_1") == {
        "attributes": {"type": "Account"}, "Stripe_Customer_Id__c": "cus_1", "Name": "cus_1"}
    assert stub_record("Opportunity", "Id", "006000000000001") is None


@pytest.mark.parametrize(("code", "message", "outcome"), [
    ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", Outcome.RETRY),
    ("STRING_TOO_LONG", "Card Last4: data value too large", Outcome.DEAD_LETTER),
    ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "bad value", Outcome.DEAD_LETTER),
    ("INVALID_FIELD", "No such column 'Nope__c'", Outcome.DEAD_LETTER),
    ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", Outcome.PAUSE),
    ("SOMETHING_NEW", "?", Outcome.DEAD_LETTER),
    # issue 14 point 5: a race on a new external id, and lock errors reported through a trigger
    ("DUPLICATE_VALUE", "duplicate value found: Stripe_Charge_Id__c duplicates value on record with id: a01",
     Outcome.RETRY),
    ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "StripePaymentTrigger: execution of AfterInsert caused by: "
     "System.DmlException: Update failed. UNABLE_TO_LOCK_ROW, unable to obtain exclusive access to this record",
     Outcome.RETRY),
    ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", "MyTrigger: System.NullPointerException", Outcome.DEAD_LETTER),
])
def test_record_error_table(code: str, message: str, outcome: Outcome) -> None:
    assert classify_record(code, message).outcome is outcome


@pytest.mark.parametrize(("status", "code", "message", "outcome"), [
    (503, None, "Service Unavailable", Outcome.RETRY),
    (None, "TIMEOUT", "", Outcome.RETRY),
    (401, "INVALID_SESSION_ID", "Session expired or invalid", Outcome.REAUTH),
    (403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", Outcome.PAUSE),
    (403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", Outcome.RETRY),
    (400, "JSON_PARSER_ERROR", "bad", Outcome.DEAD_LETTER),
    (400, "INVALID_FIELD", "No such column", Outcome.DEAD_LETTER),
    (500, None, "", Outcome.RETRY),
    (404, "NOT_FOUND", "", Outcome.DEAD_LETTER),
])
def test_call_error_table(status: int | None, code: str | None, message: str, outcome: Outcome) -> None:
    assert classify_call(status, code, message).outcome is outcome


def test_a_duplicate_value_is_retried_only_a_few_times() -> None:
    from sinks.errors import RACE_RETRIES

    assert classify_record("DUPLICATE_VALUE", "duplicate value found").retry_limit == RACE_RETRIES
    assert classify_record("UNABLE_TO_LOCK_ROW", "").retry_limit is None


def test_offsets_commit_only_below_the_oldest_unfinished_message() -> None:
    t = OffsetTracker()
    tp = (T, 0)
    for off in range(10, 15):
        t.received(tp, off)
    assert t.to_commit() == {tp: 10}
    t.committed({tp: 10})
    t.done(tp, 11)
    t.done(tp, 12)
    assert t.to_commit() == {}
    t.done(tp, 10)
    assert t.to_commit() == {tp: 13}
    t.done(tp, 13)
    t.done(tp, 14)
    assert t.to_commit() == {tp: 15}
