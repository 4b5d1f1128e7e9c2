"""BatchWriter decisions against an in-memory stand-in for Salesforce (no network, deterministic)."""

from __future__ import annotations

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import pytest

from paysync.outcomes import Outcome
from sinks.client import BulkResult, Budget, CallError
from sinks.errors import Decision
from sinks.metrics import SinkMetrics
from sinks.records import Origin, PendingRecord
from sinks.settings import SalesforceSettings, SinkSettings
from sinks.writer import BatchWriter

EXT = {"Account": "Stripe_Customer_Id__c", "Stripe_Payment__c": "Stripe_Charge_Id__c",
       "Stripe_Refund__c": "Stripe_Refund_Id__c", "Stripe_Dispute__c": "Stripe_Dispute_Id__c",
       "Stripe_Invoice__c": "Stripe_Invoice_Id__c", "Opportunity": "Id", "Order": "Id"}
OPP, OPP_GONE = "006000000000001AAA", "006000000000009AAA"


class FakeSalesforce:
    """Stores records by (sobject, external id); validates picklist-ish `Status__c` and parent existence."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, int]] = []
        self.composites: list[list[str]] = []
        self.fail_calls: list[CallError] = []
        self.lock_once: set[str] = set()
        self.duplicate_once: set[str] = set()
        self.duplicate_always: set[str] = set()
        self.no_orders = False
        self.budget = Budget()
        self.jobs: dict[str, tuple[list[dict[str, str]], list[dict[str, str]]]] = {}
        self.running: set[str] = set()

    def _apply(self, sobject: str, ext_field: str, rec: dict[str, Any], insert_only: bool = False) -> dict[str, Any]:
        ext = str(rec[ext_field])
        if rec.get("Status__c") == "Bogus":
            return {"success": False, "errors": [{"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                                  "message": "bad value for restricted picklist field: Bogus"}]}
        if ext in self.lock_once:
            self.lock_once.discard(ext)
            return {"success": False, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}]}
        if rec.get("Opportunity__c") == OPP_GONE:
            return {"success": False, "errors": [{"statusCode": "INVALID_CROSS_REFERENCE_KEY",
                                                  "message": "invalid cross reference id"}]}
        if "Order__c" in rec and self.no_orders:
            raise CallError(Decision(Outcome.DEAD_LETTER, "INVALID_FIELD"), 400,
                            "No such column 'Order__c' on sobject of type Stripe_Payment__c")
        if ext in self.duplicate_always:
            return {"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "duplicate value"}]}
        if ext in self.duplicate_once:  # another writer inserted the same new external id at the same moment
            self.duplicate_once.discard(ext)
            return {"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE",
                                                  "message": f"duplicate value found: {ext_field} duplicates value"}]}
        for name, value in rec.items():
            if isinstance(value, dict) and name.endswith("__r"):
                ptype = value["attributes"]["type"]
                pid = next(v for k, v in value.items() if k != "attributes")
                if (ptype, pid) not in self.rows:
                    return {"success": False, "errors": [{"statusCode": "INVALID_FIELD", "message":
                            f"Foreign key external ID: {pid} not found for field {EXT[ptype]} in entity {ptype}"}]}
        key = (sobject, ext)
        if insert_only and key in self.rows:
            return {"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE", "message": "duplicate"}]}
        created = key not in self.rows
        row = self.rows.setdefault(key, {})
        row.update({k: v for k, v in rec.items() if k != "attributes"})
        return {"success": True, "created": created, "errors": []}

    def upsert_collection(self, sobject: str, ext_field: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("collections", sobject, len(body["records"])))
        if self.fail_calls:
            raise self.fail_calls.pop(0)
        if ext_field == "Id":
            raise CallError(Decision(Outcome.DEAD_LETTER, "INVALID_FIELD"), 400, "Id is not an external id field")
        if any("Nope__c" in r for r in body["records"]):
            raise CallError(Decision(Outcome.DEAD_LETTER, "INVALID_FIELD"), 400, "No such column 'Nope__c'")
        return [self._apply(sobject, ext_field, r) for r in body["records"]]

    api_version = "59.0"

    def composite(self, subrequests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One round trip; each subrequest recorded in `calls` as if sent alone (kind `single` for one record)."""
        self.composites.append([sub["referenceId"] for sub in subrequests])
        if self.fail_calls:
            raise self.fail_calls.pop(0)
        out = []
        for sub in subrequests:
            parts = sub["url"].split("/")
            if parts[4] == "composite" and len(parts) == 6:  # /services/data/vXX.X/composite/sobjects: update by id
                body = self.update_collection(sub["body"])
                out.append({"body": body, "httpStatusCode": 200, "referenceId": sub["referenceId"]})
                continue
            if parts[4] == "sobjects" and len(parts) == 7:  # /services/data/vXX.X/sobjects/{Object}/{id}: PATCH by id
                res = self.update_collection({"records": [{"attributes": {"type": parts[5]}, "id": parts[6],
                                                           **sub["body"]}]})[0]
                answer: Any = None if res["success"] else [{"errorCode": res["errors"][0]["statusCode"],
                                                            "message": res["errors"][0]["message"]}]
                out.append({"body": answer, "httpStatusCode": 204 if res["success"] else 400,
                            "referenceId": sub["referenceId"]})
                continue
            if "Id" in parts:  # "Upsert Records Using sObject Collections": "Only external ids are supported."
                out.append({"body": [{"errorCode": "INVALID_FIELD", "message": "Id is not an external id field"}],
                            "httpStatusCode": 400, "referenceId": sub["referenceId"]})
                continue
            if parts[4] == "composite":  # /services/data/vXX.X/composite/sobjects/{Object}/{ExtField}
                sobject, ext_field = parts[6], parts[7]
                self.calls.append(("collections", sobject, len(sub["body"]["records"])))
                if any("Nope__c" in r for r in sub["body"]["records"]):
                    out.append({"body": [{"errorCode": "INVALID_FIELD", "message": "No such column 'Nope__c'"}],
                                "httpStatusCode": 400, "referenceId": sub["referenceId"]})
                    continue
                body: Any = [self._apply(sobject, ext_field, r) for r in sub["body"]["records"]]
                out.append({"body": body, "httpStatusCode": 200, "referenceId": sub["referenceId"]})
            else:  # /services/data/vXX.X/sobjects/{Object}/{ExtField}/{value}
                sobject, ext_field, value = parts[5], parts[6], unquote(parts[7])
                self.calls.append(("single", sobject, 1))
                res = self._apply(sobject, ext_field, {**sub["body"], ext_field: value})
                if res["success"]:
                    out.append({"body": {"id": "x", **res}, "httpStatusCode": 201 if res["created"] else 200,
                                "referenceId": sub["referenceId"]})
                else:
                    e = res["errors"][0]
                    out.append({"body": [{"errorCode": e["statusCode"], "message": e["message"]}],
                                "httpStatusCode": 400, "referenceId": sub["referenceId"]})
        return out

    def create_collection(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("create", body["records"][0]["attributes"]["type"], len(body["records"])))
        out = []
        for r in body["records"]:
            t = r["attributes"]["type"]
            out.append(self._apply(t, EXT[t], r, insert_only=True))
        return out

    def update_collection(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.calls.append(("update", body["records"][0]["attributes"]["type"], len(body["records"])))
        out = []
        for r in body["records"]:
            if "Id" in r or "id" not in r:
                raise CallError(Decision(Outcome.DEAD_LETTER, "INVALID_FIELD"), 400, "no id")
            key = (r["attributes"]["type"], r["id"])
            if key not in self.rows:
                out.append({"success": False, "errors": [{"statusCode": "INVALID_CROSS_REFERENCE_KEY",
                                                          "message": "invalid cross reference id"}]})
            else:
                self.rows[key].update({k: v for k, v in r.items() if k not in ("attributes", "id")})
                out.append({"success": True, "errors": []})
        return out

    def bulk_submit(self, sobject: str, ext_field: str, csv_text: str) -> str:
        self.calls.append(("bulk", sobject, csv_text.count("\n") - 1))
        ok, failed = [], []
        for row in csv.DictReader(io.StringIO(csv_text)):
            rec: dict[str, Any] = {}
            for col, val in row.items():
                if val == "":
                    continue
                if "." in col:
                    rel, field = col.split(".")
                    rec[rel] = {"attributes": {"type": {"Account__r": "Account", "Payment__r": "Stripe_Payment__c"}[rel]},
                                field: val}
                else:
                    rec[col] = None if val == "#N/A" else val
            res = self._apply(sobject, ext_field, rec)
            if res["success"]:
                ok.append({"sf__Id": "x", "sf__Created": "true", **row})
            else:
                e = res["errors"][0]
                failed.append({"sf__Id": "", "sf__Error": f"{e['statusCode']}:{e['message']}:--", **row})
        job_id = f"750{len(self.jobs)}"
        self.jobs[job_id] = (ok, failed)
        return job_id

    def bulk_status(self, job_id: str) -> dict[str, Any]:
        self.calls.append(("poll", job_id, 0))
        ok, failed = self.jobs[job_id]
        if job_id in self.running:
            return {"state": "InProgress"}
        return {"state": "JobComplete", "numberRecordsProcessed": len(ok) + len(failed),
                "numberRecordsFailed": len(failed)}

    def bulk_results(self, job_id: str, info: dict[str, Any], total: int) -> BulkResult:
        ok, failed = self.jobs[job_id]
        return BulkResult(job_id, "JobComplete", "", len(ok) + len(failed), failed=failed,
                          all_others_succeeded=True)

    def bulk_abort(self, job_id: str) -> None:
        self.calls.append(("abort", job_id, 0))


def rec(sobject: str, ext: str, fields: dict[str, Any], parents: list[dict[str, str]] | None = None,
        offset: int = 0) -> PendingRecord:
    return PendingRecord.from_upsert(
        {"sobject": sobject, "external_id_field": EXT[sobject], "external_id": ext, "fields": fields,
         "parents": parents or []}, Origin("t", 0, offset, None, b"", None, None))


def acct(cus: str) -> dict[str, str]:
    return {"relationship": "Account__r", "sobject": "Account", "external_id_field": "Stripe_Customer_Id__c",
            "external_id": cus}


@pytest.fixture
def sf() -> FakeSalesforce:
    return FakeSalesforce()


@pytest.fixture
def writer(sf: FakeSalesforce) -> BatchWriter:
    settings = SinkSettings(sink_bulk_threshold=50, sink_parent_wait_attempts=2, sink_parent_wait_s=0,
                            sink_retry_base_s=0.001, sink_bulk_backlog=0)
    pool = ThreadPoolExecutor(2)
    return BatchWriter(sf, settings, SinkMetrics(), pool)  # type: ignore[arg-type]


def test_parents_land_before_children_in_one_batch(sf: FakeSalesforce, writer: BatchWriter) -> None:
    batch = [rec("Stripe_Payment__c", "ch_1", {"Amount__c": "10.00"}, [acct("cus_1")]),
             rec("Account", "cus_1", {"Name": "Ada"})]
    report = writer.write(batch)
    assert len(report.landed) == 2 and not report.dead and not report.retry
    assert [c[1] for c in sf.calls] == ["Account", "Stripe_Payment__c"]


def test_poison_record_is_isolated_and_the_rest_land(sf: FakeSalesforce, writer: BatchWriter) -> None:
    batch = [rec("Account", f"cus_{i}", {"Name": "x"}) for i in range(7)]
    batch.append(rec("Account", "cus_bad", {"Name": "x", "Nope__c": "1"}))
    batch.append(rec("Stripe_Payment__c", "ch_bad", {"Status__c": "Bogus"}))
    report = writer.write(batch)
    assert len(report.landed) == 7
    assert sorted((r.external_id, code) for r, code, _ in report.dead) == [
        ("ch_bad", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), ("cus_bad", "INVALID_FIELD")]


def test_transient_failures_are_retried_in_place(sf: FakeSalesforce, writer: BatchWriter) -> None:
    sf.fail_calls.append(CallError(Decision(Outcome.RETRY, "HTTP_503"), 503, "unavailable"))
    sf.lock_once.add("cus_2")
    report = writer.write([rec("Account", "cus_1", {"Name": "a"}), rec("Account", "cus_2", {"Name": "b"})])
    assert len(report.landed) == 2 and not report.retry
    assert sf.rows[("Account", "cus_2")]["Name"] == "b"


def test_budget_refusal_pauses_and_holds_children(sf: FakeSalesforce, writer: BatchWriter) -> None:
    sf.fail_calls.append(CallError(Decision(Outcome.PAUSE, "REQUEST_LIMIT_EXCEEDED"), 403, "TotalRequests"))
    report = writer.write([rec("Account", "cus_1", {"Name": "a"}),
                           rec("Stripe_Payment__c", "ch_1", {}, [acct("cus_1")])])
    assert report.paused and len(report.retry) == 2 and not report.landed and not report.dead
    assert all(r.attempts == 0 for r in report.retry)


def test_a_pause_stops_the_composite_calls_not_yet_sent(sf: FakeSalesforce, writer: BatchWriter) -> None:
    writer.s.sink_bulk_threshold = 10_000
    sf.fail_calls.append(CallError(Decision(Outcome.PAUSE, "REQUEST_LIMIT_EXCEEDED"), 403, "TotalRequests"))
    batch = [rec("Account", f"cus_{i}", {"Name": "a"}) for i in range(1000)]
    batch += [rec("Stripe_Payment__c", f"ch_{i}", {}) for i in range(1000)]  # a second call, after the accounts
    report = writer.write(batch)
    assert report.paused and len(report.retry) == 2000 and not report.landed
    assert len(sf.composites) == 1 and all(r.attempts == 0 for r in report.retry)


def test_child_waits_for_missing_parent_then_gets_a_stub(sf: FakeSalesforce, writer: BatchWriter) -> None:
    child = rec("Stripe_Payment__c", "ch_1", {"Amount__c": "5.00"}, [acct("cus_9")])
    report = writer.write([child])
    assert report.retry == [child] and child.parent_waits == 1 and ("Account", "cus_9") not in sf.rows
    child.not_before = 0
    report = writer.write([child])
    assert report.landed == [child]
    assert sf.rows[("Account", "cus_9")]["Name"] == "cus_9"  # the stub
    assert ("create", "Account", 1) in sf.calls


def test_stub_never_overwrites_a_real_parent(sf: FakeSalesforce, writer: BatchWriter) -> None:
    child = rec("Stripe_Payment__c", "ch_1", {}, [acct("cus_1")])
    writer.write([child])
    writer.write([rec("Account", "cus_1", {"Name": "Real Name"})])  # the parent arrives meanwhile
    report = writer.write([child])
    assert report.landed == [child] and sf.rows[("Account", "cus_1")]["Name"] == "Real Name"


def test_large_batches_take_the_bulk_path_without_waiting_for_the_jobs(sf: FakeSalesforce,
                                                                       writer: BatchWriter) -> None:
    accounts = [rec("Account", f"cus_{i}", {"Name": f"n{i}"}) for i in range(60)]
    payments = [rec("Stripe_Payment__c", f"ch_{i}", {"Amount__c": "1.00", "Failure_Code__c": None}, [acct(f"cus_{i}")])
                for i in range(60)]
    payments.append(rec("Stripe_Payment__c", "ch_bad", {"Status__c": "Bogus"}))
    sf.running.add("7500")
    report = writer.write(accounts + payments)
    # the accounts' job is submitted and left running; the payments wait for it (not counted as a try)
    assert [j.job_id for j in report.submitted] == ["7500"] and not report.landed
    assert [r.external_id for r, _, _ in report.dead] == ["ch_bad"]  # no parent in flight: Composite, refused
    assert report.retry == payments[:60] and all(r.attempts == 0 for r in report.retry)
    assert writer.finish_bulk(now=time.monotonic() + 60) is None  # polled: still running
    sf.running.clear()
    done = writer.finish_bulk(now=time.monotonic() + 120)
    assert done is not None and done.landed == accounts
    report = writer.write(payments[:60])
    assert [j.job_id for j in report.submitted] == ["7501"]
    done = writer.finish_bulk(now=time.monotonic() + 60)
    assert done is not None and len(done.landed) == 60 and not done.dead
    assert [c[0] for c in sf.calls if c[0] == "bulk"] == ["bulk", "bulk"]
    assert sf.rows[("Stripe_Payment__c", "ch_3")]["Failure_Code__c"] is None


def test_child_of_a_failed_parent_waits_for_the_parents_retry(sf: FakeSalesforce, writer: BatchWriter) -> None:
    writer.in_batch_retries = 0
    sf.lock_once.add("cus_1")
    parent_rec = rec("Account", "cus_1", {"Name": "a"})
    child = rec("Stripe_Payment__c", "ch_1", {}, [acct("cus_1")])
    report = writer.write([parent_rec, child])
    assert report.retry == [parent_rec, child] and not report.dead
    assert child.parent_waits == 0 and child.attempts == 0 and child.not_before == parent_rec.not_before
    assert [c[1] for c in sf.calls] == ["Account", "Stripe_Payment__c"] and len(sf.composites) == 1


def test_child_that_missed_its_parent_is_retried_in_place_after_it(sf: FakeSalesforce, writer: BatchWriter) -> None:
    sf.lock_once.add("cus_1")
    parent_rec = rec("Account", "cus_1", {"Name": "a"})
    child = rec("Stripe_Payment__c", "ch_1", {"Amount__c": "1.00"}, [acct("cus_1")])
    report = writer.write([parent_rec, child])
    assert report.landed == [parent_rec, child] and not report.retry and child.parent_waits == 0
    assert [c[1] for c in sf.calls] == ["Account", "Stripe_Payment__c"] * 2 and len(sf.composites) == 2


def test_several_objects_share_one_composite_call(sf: FakeSalesforce, writer: BatchWriter) -> None:
    writer.s.sink_bulk_threshold = 10_000
    batch = [rec("Account", f"cus_{i}", {"Name": "x"}) for i in range(3)]
    batch += [rec("Stripe_Payment__c", f"ch_{i}", {"Amount__c": "1.00"}, [acct(f"cus_{i % 3}")]) for i in range(450)]
    batch += [rec("Stripe_Invoice__c", f"in_{i}", {}) for i in range(30)]
    batch += [rec("Stripe_Refund__c", "re_1", {"Amount__c": "1.00"})]
    batch += [rec("Stripe_Dispute__c", f"dp_{i}", {}) for i in range(2)]
    report = writer.write(batch)
    # 7 Collections chunks would take two calls; the two smallest objects go record by record instead
    assert len(report.landed) == len(batch) and len(sf.composites) == 1
    assert sf.calls == [("collections", "Account", 3), ("collections", "Stripe_Invoice__c", 30),
                        ("collections", "Stripe_Payment__c", 200), ("collections", "Stripe_Payment__c", 200),
                        ("collections", "Stripe_Payment__c", 50), ("single", "Stripe_Refund__c", 1),
                        ("single", "Stripe_Dispute__c", 1), ("single", "Stripe_Dispute__c", 1)]


def test_composite_can_be_turned_off(sf: FakeSalesforce, writer: BatchWriter) -> None:
    writer.s.sink_composite = False
    report = writer.write([rec("Account", "cus_1", {"Name": "a"}), rec("Stripe_Refund__c", "re_1", {})])
    assert len(report.landed) == 2 and not sf.composites
    assert sf.calls == [("collections", "Account", 1), ("collections", "Stripe_Refund__c", 1)]


def test_a_refused_composite_call_falls_back_to_one_collections_call_per_object(sf: FakeSalesforce,
                                                                                 writer: BatchWriter) -> None:
    sf.fail_calls.append(CallError(Decision(Outcome.DEAD_LETTER, "INVALID_INPUT"), 400, "composite refused"))
    report = writer.write([rec("Account", "cus_1", {"Name": "a"}),
                           rec("Stripe_Payment__c", "ch_1", {}, [acct("cus_1")])])
    assert len(report.landed) == 2 and not report.dead and len(sf.composites) == 1
    assert sf.calls[-2:] == [("collections", "Account", 1), ("collections", "Stripe_Payment__c", 1)]


# issue 14 -------------------------------------------------------------------------------------------------------

def opp(opp_id: str, status: str) -> PendingRecord:
    return rec("Opportunity", opp_id, {"Stripe_Payment_Status__c": status})


@pytest.mark.parametrize("composite", [True, False])
def test_opportunity_status_is_an_update_by_id_never_an_upsert_by_id(sf: FakeSalesforce, writer: BatchWriter,
                                                                      composite: bool) -> None:
    """Point 2: "Upsert Records Using sObject Collections": "Only external ids are supported. Don't use record ids"."""
    writer.s.sink_composite = composite
    sf.rows[("Opportunity", OPP)] = {"Name": "Deal"}
    report = writer.write([opp(OPP, "Succeeded"), rec("Account", "cus_1", {"Name": "a"})])
    assert len(report.landed) == 2 and not report.dead
    assert sf.rows[("Opportunity", OPP)]["Stripe_Payment_Status__c"] == "Succeeded"
    assert ("update", "Opportunity", 1) in sf.calls


def test_many_status_updates_go_as_one_collections_update(sf: FakeSalesforce, writer: BatchWriter) -> None:
    writer.s.sink_bulk_threshold = 10_000
    ids = [f"006{i:012d}AAA" for i in range(30)]
    for i in ids:
        sf.rows[("Opportunity", i)] = {}
    report = writer.write([opp(i, "Refunded") for i in ids])
    assert len(report.landed) == 30 and sf.calls == [("update", "Opportunity", 30)] and len(sf.composites) == 1


def test_composite_calls_ask_salesforce_not_to_collate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point 3: from API 49.0 collateSubrequests defaults to true and unrelated subrequests may run in any order."""
    from sinks.client import SalesforceClient

    client = SalesforceClient(SalesforceSettings(), SinkMetrics())
    sent: list[Any] = []

    class Answer:
        status_code = 200

        @staticmethod
        def json() -> Any:
            return {"compositeResponse": [{"httpStatusCode": 200, "body": [], "referenceId": "r0"}]}

    def request(kind: str, method: str, path: str, **kwargs: Any) -> Any:
        sent.append(kwargs["json"])
        return Answer()

    monkeypatch.setattr(client, "request", request)
    client.composite([{"method": "PATCH", "url": "/x", "referenceId": "r0", "body": {}}])
    assert sent[0]["collateSubrequests"] is False and sent[0]["allOrNone"] is False


def test_duplicate_value_on_a_new_external_id_is_a_race_and_retried(sf: FakeSalesforce, writer: BatchWriter) -> None:
    """Point 5: two writers inserting the same new external id: the loser's write again updates the winner's record."""
    sf.duplicate_once.add("cus_1")
    report = writer.write([rec("Account", "cus_1", {"Name": "a"})])
    assert [r.external_id for r in report.landed] == ["cus_1"] and not report.dead


def test_a_lasting_duplicate_value_is_dead_lettered_after_a_few_writes(sf: FakeSalesforce, writer: BatchWriter) -> None:
    from sinks.errors import RACE_RETRIES

    sf.duplicate_always.add("cus_1")
    report = writer.write([rec("Account", "cus_1", {"Name": "a"})])
    assert [(r.external_id, code) for r, code, _ in report.dead] == [("cus_1", "DUPLICATE_VALUE")]
    assert len(sf.composites) == RACE_RETRIES


def test_a_refused_opportunity_link_is_dropped_and_the_payment_lands(sf: FakeSalesforce, writer: BatchWriter) -> None:
    """Point 6: a deleted/invisible/wrong-type raw id fails the whole record; the payment must not be lost."""
    pay = rec("Stripe_Payment__c", "ch_1", {"Amount__c": "5.00", "Opportunity__c": OPP_GONE})
    report = writer.write([pay])
    assert report.landed == [pay] and not report.dead
    assert sf.rows[("Stripe_Payment__c", "ch_1")]["Amount__c"] == "5.00"
    assert "Opportunity__c" not in sf.rows[("Stripe_Payment__c", "ch_1")]
    ((refused, code, message),) = report.refused_links
    assert refused is pay and code == "INVALID_CROSS_REFERENCE_KEY" and OPP_GONE in message


def test_an_absent_order_field_is_learned_once(sf: FakeSalesforce, writer: BatchWriter) -> None:
    """Point 6, Orders disabled: INVALID_FIELD naming Order__c; later records drop it before any call fails."""
    sf.no_orders = True
    first = writer.write([rec("Stripe_Payment__c", "ch_1", {"Amount__c": "1.00", "Order__c": "801000000000001AAA"})])
    assert len(first.landed) == 1 and [c for _, c, _ in first.refused_links] == ["INVALID_FIELD"]
    sf.calls.clear()
    sf.composites.clear()
    later = writer.write([rec("Stripe_Payment__c", f"ch_{i}", {"Order__c": "801000000000001AAA"}) for i in range(2, 9)])
    assert len(later.landed) == 7 and len(later.refused_links) == 7
    assert len(sf.composites) == 1 and sf.calls == [("collections", "Stripe_Payment__c", 7)]  # no refused call


def test_bulk_is_chosen_with_the_backlog_and_the_budget_in_view(sf: FakeSalesforce, writer: BatchWriter) -> None:
    """Point 7: a job costs several calls (create, upload, close, polls, results), Composite one per 1,000 records."""
    writer.s.sink_bulk_threshold = 2_000
    writer.s.sink_bulk_backlog = 20_000
    assert not writer._use_bulk(1_999, backlog=10**6)  # below the threshold
    assert not writer._use_bulk(2_000, backlog=0)  # small backlog: 2 Composite calls beat a ~7-call job
    assert writer._use_bulk(2_000, backlog=50_000)  # large backlog: the job lets the loop go on
    assert writer._use_bulk(20_000, backlog=0)  # Bulk is cheaper than 20 Composite calls
    sf.budget.update(90, 100)  # budget tight: the cheaper path whatever the backlog
    assert not writer._use_bulk(2_000, backlog=50_000) and writer._use_bulk(20_000, backlog=0)


def test_records_of_a_running_job_are_not_committable(sf: FakeSalesforce, writer: BatchWriter) -> None:
    """Point 7: a record in a running job is in no report list (its offsets stay uncommitted) until the job ends."""
    accounts = [rec("Account", f"cus_{i}", {"Name": "x"}, offset=i) for i in range(60)]
    sf.running.add("7500")
    report = writer.write(accounts)
    assert report.submitted and not (report.landed or report.dead or report.retry)
    again = writer.write([rec("Account", "cus_3", {"Name": "newer"})])  # a newer version waits for the job
    assert len(again.retry) == 1 and not again.landed and writer.jobs.record_count() == 60
