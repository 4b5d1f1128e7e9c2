"""The stream worker's decisions without Kafka: order guard (copies too), joins, reconciliation, dead letters,
expiry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from paysync.codec import AvroCodec
from streams.metrics import StreamMetrics
from streams.outputs import Origin, Target
from streams.ports import RealMapper
from streams.processor import Processor, Retention, Step, Tables
from streams.settings import StreamSettings
from streams_app_gen import Rec, encode, fold, generate, redeliver, run_in_process


NOW = 1_800_000_000_000
ORIGIN = Origin("p.stripe.events", 2, 41)


def _processor(retention: Retention = Retention()) -> Processor:
    registry = CollectorRegistry()
    proc = Processor(RealMapper(StreamSettings().mapping), AvroCodec(), StreamMetrics(registry), Tables(), retention)
    proc.registry = registry  # type: ignore[attr-defined]
    return proc


def _count(proc: Processor, name: str, **labels: str) -> float:
    value = proc.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return value or 0.0


def _event(proc: Processor, rec: Rec, now: int = NOW) -> list[Any]:
    step = proc.on_event(rec.key.encode(), encode(proc.codec, rec), ORIGIN, now)
    proc.apply(step)
    return step.outputs


@pytest.fixture(scope="module")
def stream() -> list[Rec]:
    return generate(seed=3, customers=8, charges=40, payouts=2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_redelivery_order_folds_to_the_ordered_result(stream: list[Rec], seed: int) -> None:
    expected = fold(run_in_process(stream, _processor()))
    proc = _processor()
    assert fold(run_in_process(redeliver(stream, times=3, seed=seed), proc)) == expected
    # every copy past the first is dropped: a duplicate of the entry it wrote, or stale after a newer event
    dropped = _count(proc, "paysync_stream_duplicates_dropped_total", input="events") + _count(
        proc, "paysync_stream_stale_dropped_total", input="events")
    assert dropped >= 2 * sum(1 for r in stream if r.kind == "events")
    assert _count(proc, "paysync_stream_duplicates_dropped_total", input="events") > 0


def test_every_payout_reconciles_with_exact_sums(stream: list[Rec]) -> None:
    state = fold(run_in_process(stream, _processor()))
    nets: dict[str, int] = {}
    for rec in stream:
        v = rec.value
        if rec.kind == "bts" and v["payout_id"] and v["type"] != "payout":
            nets[v["payout_id"]] = nets.get(v["payout_id"], 0) + v["net"]
    for payout_id, net in nets.items():
        fields = state[("Stripe_Payout__c", payout_id)]["fields"]
        assert fields["Reconciliation_Status__c"] == "Reconciled"
        assert fields["Net__c"] == f"{net // 100}.{net % 100:02d}"
        assert fields["Discrepancy__c"] == "0.00"


def test_a_payout_whose_nets_do_not_add_up_is_a_discrepancy_with_the_difference(stream: list[Rec]) -> None:
    victim = next(r.value["id"] for r in stream if r.kind == "bts" and r.value["payout_id"] == "po_3_001"
                  and r.value["type"] == "charge")
    tampered = [
        Rec("bts", r.key, dict(r.value, fee=r.value["fee"] + 7, net=r.value["net"] - 7))
        if r.kind == "bts" and r.value["id"] == victim else r
        for r in stream
    ]
    fields = fold(run_in_process(tampered, _processor()))[("Stripe_Payout__c", "po_3_001")]["fields"]
    assert fields["Reconciliation_Status__c"] == "Discrepancy"
    assert fields["Discrepancy__c"] == "0.07"


def test_a_balance_transaction_joins_its_charge_whichever_arrives_first(stream: list[Rec]) -> None:
    charge_events = [r for r in stream if r.kind == "events" and r.value["object_id"] == "ch_3_00000"]
    bts = [r for r in stream if r.kind == "bts" and r.value["source_id"] == "ch_3_00000"]
    before = fold(run_in_process(bts + charge_events, _processor()))
    after = fold(run_in_process(charge_events + bts, _processor()))
    assert before == after
    payment = after[("Stripe_Payment__c", "ch_3_00000")]["fields"]
    assert payment["Fee__c"] is not None and payment["Net__c"] is not None and payment["Amount__c"] is not None
    assert after[("Stripe_Payment__c", "ch_3_00000")]["parents"]["Payout__r"][2].startswith("po_3_")


def test_an_older_event_never_overwrites_newer_state(stream: list[Rec]) -> None:
    created = next(r for r in stream if r.value.get("event_type") == "customer.created")
    updated = next(r for r in stream if r.value.get("event_type") == "customer.updated"
                   and r.value["object_id"] == created.value["object_id"])
    proc = _processor()
    assert _event(proc, updated)
    assert _event(proc, created) == []
    assert _count(proc, "paysync_stream_stale_dropped_total", input="events") == 1
    assert _event(proc, updated) == []
    assert _count(proc, "paysync_stream_duplicates_dropped_total", input="events") == 1


def test_tables_change_only_when_the_step_is_applied(stream: list[Rec]) -> None:
    proc = _processor()
    rec = stream[0]
    step = proc.on_event(rec.key.encode(), encode(proc.codec, rec), ORIGIN, NOW)
    assert step.outputs and not proc.tables.versions
    proc.apply(step)
    assert rec.value["object_id"] in proc.tables.versions


def test_a_mapped_event_writes_one_table_entry_and_a_dropped_one_none(stream: list[Rec]) -> None:
    created = next(r for r in stream if r.value.get("event_type") == "customer.created")
    updated = next(r for r in stream if r.value.get("event_type") == "customer.updated"
                   and r.value["object_id"] == created.value["object_id"])
    proc = _processor()
    steps = []
    for offset, rec in enumerate([updated, updated, created]):
        steps.append(proc.on_event(rec.key.encode(), encode(proc.codec, rec), Origin(ORIGIN.topic, 2, offset), NOW))
        proc.apply(steps[-1])
    version = proc.mapper.encode_version(proc.mapper.version_of(
        "customer", json.loads(updated.value["raw_event"])["data"]["object"], updated.value["created"],
        updated.value["event_id"]))
    assert steps[0].outputs and steps[0].writes == [("versions", updated.value["object_id"], [version, 2, 0])]
    assert steps[1] == steps[2] == Step()  # the copy and the older event: no output, no table write
    assert proc.tables == Tables(versions={updated.value["object_id"]: [version, 2, 0]})


def test_copies_are_dropped_as_duplicates_and_older_events_as_stale_without_an_event_id_table(
    stream: list[Rec],
) -> None:
    by_object: dict[str, list[Rec]] = {}
    for r in stream:
        if r.kind == "events":
            by_object.setdefault(r.value["object_id"], []).append(r)
    oldest, middle, newest = next(recs for recs in by_object.values() if len(recs) >= 3)[:3]
    proc = _processor()
    late = NOW + 400 * 86_400_000  # no retention: a copy is recognised however late it comes
    deliveries = [
        (middle, NOW, "applied"), (middle, NOW, "duplicate"),  # an exact copy
        (newest, NOW, "applied"), (middle, NOW, "stale"),  # a redelivery after another event of the object
        (oldest, NOW, "stale"),  # an older event, first seen after newer ones
        (newest, late, "duplicate"),
    ]
    for offset, (rec, now, verdict) in enumerate(deliveries):
        step = proc.on_event(rec.key.encode(), encode(proc.codec, rec), Origin(ORIGIN.topic, 2, offset), now)
        assert (bool(step.outputs), len(step.writes)) == ((True, 1) if verdict == "applied" else (False, 0))
        proc.apply(step)
    for name, verdict in (("applied", "applied"), ("duplicates_dropped", "duplicate"), ("stale_dropped", "stale")):
        expected = sum(1 for _, _, v in deliveries if v == verdict)
        assert _count(proc, f"paysync_stream_{name}_total", input="events") == expected, name
    assert list(proc.tables.versions) == [newest.value["object_id"]]


def test_reconciled_payouts_shrink_to_a_closed_marker_after_the_retention(stream: list[Rec]) -> None:
    proc = _processor(Retention(payout_ms=1000))
    run_in_process(stream, proc)
    payout_id, state = next(iter(proc.tables.payouts.items()))
    assert state["members"] and state["reconciled_at"] is not None
    assert proc.payout_closed(state, state["reconciled_at"] + 999) is None
    marker = proc.payout_closed(state, state["reconciled_at"] + 1000)
    assert marker is not None and marker["closed"] and "members" not in marker
    proc.tables.payouts[payout_id] = marker
    late = {"kind": "member", "payout_id": payout_id, "member": {}, "expected_count": 1, "meta": {},
            "origin": ["t", 0, 0], "received_at": 0}
    assert proc.on_payout_message(late, NOW).outputs == []


def test_undecodable_records_are_dead_lettered_with_their_origin() -> None:
    proc = _processor()
    step = proc.on_event(b"ch_1", b"\x00garbage", ORIGIN, NOW)
    [dead] = step.outputs
    assert dead.target is Target.DEAD_LETTER
    assert (dead.value["topic"], dead.value["partition"], dead.value["offset"]) == (ORIGIN.topic, 2, 41)
    assert dead.value["error_code"] == "BAD_MAGIC" and dead.value["error_kind"] == "decode"
    assert dead.value["original_key"] == b"ch_1" and dead.value["original_value"] == b"\x00garbage"
    bt_step = proc.on_balance_transaction(b"ch_1", b"", ORIGIN, NOW)
    assert bt_step.outputs[0].value["error_code"] == "TRUNCATED"


def test_malformed_objects_are_dead_lettered_with_the_event_id(stream: list[Rec]) -> None:
    charge = next(r for r in stream if r.value.get("event_type") == "charge.succeeded")
    raw = json.loads(charge.value["raw_event"])
    raw["data"]["object"]["currency"] = "zzz"
    broken = Rec("events", charge.key, dict(charge.value, event_id="evt_broken", raw_event=json.dumps(raw)))
    proc = _processor()
    [dead] = _event(proc, broken)
    assert dead.target is Target.DEAD_LETTER
    assert dead.value["event_id"] == "evt_broken" and dead.value["error_kind"] == "invalid"
    assert dead.value["error_code"] == "BAD_CURRENCY"
    assert not proc.tables.versions  # a replay after a fix is not a "duplicate"
    fixed = Rec("events", charge.key, dict(charge.value, event_id="evt_broken"))
    assert _event(proc, fixed) and _count(proc, "paysync_stream_duplicates_dropped_total", input="events") == 0


def test_unknown_and_thin_events_are_skipped_and_counted(stream: list[Rec]) -> None:
    proc = _processor()
    unknown = Rec("events", "x", dict(stream[0].value, event_id="evt_u", object_type="balance"))
    thin = Rec("events", "x", dict(stream[0].value, event_id="evt_t", thin=True))
    assert _event(proc, unknown) == [] and _event(proc, thin) == []
    assert _count(proc, "paysync_stream_skipped_total", input="events", reason="unknown_type") == 1
    assert _count(proc, "paysync_stream_skipped_total", input="events", reason="thin_event") == 1
    assert _count(proc, "paysync_stream_dead_lettered_total", input="events", code="BAD_MAGIC") == 0


def test_upserts_carry_their_origin_and_ingestion_time(stream: list[Rec]) -> None:
    proc = _processor()
    outputs = _event(proc, stream[0])
    for out in outputs:
        assert out.key == f"{out.value['sobject']}:{out.value['external_id']}".encode()
        assert (out.value["origin_topic"], out.value["origin_partition"], out.value["origin_offset"]) == (
            ORIGIN.topic, 2, 41)
        assert out.value["ingested_at"] == stream[0].value["received_at"]
        AvroCodec().encode("paysync.SalesforceUpsert", out.value)
