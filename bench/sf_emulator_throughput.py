"""Salesforce emulator throughput with the real client (simple-salesforce): Bulk 2.0 and sObject Collections.

    .venv/bin/python bench/sf_emulator_throughput.py [--bulk-rows 20000] [--collection-rows 4000]

Prints records/s for a Bulk 2.0 upsert (one job, timed from create to JobComplete) and for Collections upserts
(200 records a request, sequential), first insert then the same rows again (update).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from simple_salesforce import Salesforce

from emulators.salesforce_emulator import client_session, start_emulator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bulk-rows", type=int, default=20_000)
    parser.add_argument("--collection-rows", type=int, default=4_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        handle = start_emulator(Path(tmp) / "bench.sqlite3")
        try:
            c = handle.credentials
            sf = Salesforce(username=c["username"], password=c["password"], security_token=c["security_token"],
                            session=client_session(handle))
            sf.Stripe_Payout__c.upsert("Stripe_Payout_Id__c/po_bench", {"Status__c": "Paid"})
            rows = [{"Stripe_Charge_Id__c": f"ch_bench_{i}", "Amount__c": f"{i}.50", "Currency__c": "USD",
                     "Status__c": "Succeeded", "Paid_At__c": "2026-01-02T03:04:05.000Z",
                     "Payout__r.Stripe_Payout_Id__c": "po_bench"} for i in range(args.bulk_rows)]
            for label in ("insert", "update"):
                start = time.perf_counter()
                res = sf.bulk2.Stripe_Payment__c.upsert(records=rows, external_id_field="Stripe_Charge_Id__c",
                                                        wait=0.05)
                took = time.perf_counter() - start
                done = sum(r["numberRecordsProcessed"] for r in res)
                print(f"bulk2 upsert ({label}): {done} records in {took:.2f}s = {done / took:,.0f} records/s")
            records = [{"attributes": {"type": "Stripe_Refund__c"}, "Stripe_Refund_Id__c": f"re_bench_{i}",
                        "Amount__c": f"{i}.5", "Currency__c": "USD", "Status__c": "Succeeded"}
                       for i in range(args.collection_rows)]
            for label in ("insert", "update"):
                start = time.perf_counter()
                for i in range(0, len(records), 200):
                    out = sf.restful("composite/sobjects/Stripe_Refund__c/Stripe_Refund_Id__c", method="PATCH",
                                     json={"allOrNone": False, "records": records[i:i + 200]})
                    assert all(r["success"] for r in out)
                took = time.perf_counter() - start
                n = len(records)
                print(f"collections upsert ({label}): {n} records in {took:.2f}s = {n / took:,.0f} records/s")
        finally:
            handle.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
