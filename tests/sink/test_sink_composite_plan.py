"""Packing of upserts into Composite calls: Salesforce's subrequest limits, write order, fewest calls."""

from __future__ import annotations

import random

from sinks.composite import MAX_COLLECTIONS, MAX_SUBREQUESTS, Group, plan, waves
from sinks.records import OBJECT_ORDER, Origin, PendingRecord, object_rank

OBJECTS = [o for o in OBJECT_ORDER if o.startswith("Stripe_") and o != "Stripe_Sync_Error__c"] + ["Account"]


def group(sobject: str, n: int) -> Group:
    recs = [PendingRecord.from_upsert({"sobject": sobject, "external_id_field": "Ext__c", "external_id": f"{sobject}-{i}",
                                       "fields": {"Name": "x"}, "parents": []}, Origin("t", 0, i, None, b"", None, None))
            for i in range(n)]
    return Group(sobject, "Ext__c", recs)


def test_random_batches_respect_the_limits_keep_the_order_and_carry_every_record_once() -> None:
    rng = random.Random(11)
    for _ in range(300):
        objects = sorted(rng.sample(OBJECTS, rng.randint(1, len(OBJECTS))), key=object_rank)
        groups = [group(o, rng.choice([1, 2, 5, 19, 30, 199, 200, 201, 450, 1999])) for o in objects]
        calls = plan(groups)
        assert all(len(c) <= MAX_SUBREQUESTS and sum(not s.single for s in c) <= MAX_COLLECTIONS for c in calls)
        subs = [s for c in calls for s in c]
        assert all(len(s.records) == 1 for s in subs if s.single) and all(len(s.records) <= 200 for s in subs)
        assert [r.key for s in subs for r in s.records] == [r.key for g in groups for r in g.records]
        assert len({s.ref for s in subs}) == len(subs)
        heavy = sum(-(-len(g.records) // 200) for g in groups)
        assert len(calls) <= -(-heavy // MAX_COLLECTIONS)  # never more calls than plain Collections packing


def test_small_objects_go_record_by_record_only_when_that_saves_a_call() -> None:
    six = [group(o, n) for o, n in zip(OBJECTS[:6], (150, 120, 3, 2, 90, 60))]
    calls = plan(six)
    assert len(calls) == 1
    assert [s.sobject for s in calls[0] if s.single] == [OBJECTS[3]] * 2  # the smallest object is enough
    five = plan(six[:2] + six[4:] + [group(OBJECTS[2], 3)])
    assert len(five) == 1 and not any(s.single for s in five[0])


def test_single_record_subrequest_addresses_the_record_by_its_external_id() -> None:
    g = Group("Stripe_Payment__c", "Stripe_Charge_Id__c", [PendingRecord.from_upsert(
        {"sobject": "Stripe_Payment__c", "external_id_field": "Stripe_Charge_Id__c", "external_id": "ch_1/ä",
         "fields": {"Amount__c": "1.005"}, "parents": [{"relationship": "Account__r", "sobject": "Account",
                                                       "external_id_field": "Stripe_Customer_Id__c",
                                                       "external_id": "cus_1"}]},
        Origin("t", 0, 0, None, b"", None, None))])
    sub = plan([g] + [group(o, 200) for o in OBJECTS[1:6]])[0][0]
    req = sub.request("59.0")
    assert sub.single and req["method"] == "PATCH"
    assert req["url"] == "/services/data/v59.0/sobjects/Stripe_Payment__c/Stripe_Charge_Id__c/ch_1%2F%C3%A4"
    assert req["body"] == {"Amount__c": "1.005", "Account__r": {"attributes": {"type": "Account"},
                                                                "Stripe_Customer_Id__c": "cus_1"}}


def test_only_calls_of_one_and_the_same_object_rank_run_together() -> None:
    calls = plan([group("Account", 30), group("Stripe_Payment__c", 3000), group("Stripe_Refund__c", 10)])
    shape = [[len(c) for c in w] for w in waves(calls)]
    assert sum(len(w) for w in waves(calls)) == len(calls)
    assert shape[0] == [5]  # accounts and the first payments: alone
    assert any(len(w) > 1 for w in waves(calls))  # payment-only calls go concurrently
    for w in waves(calls):
        if len(w) > 1:
            assert len({s.sobject for c in w for s in c}) == 1
