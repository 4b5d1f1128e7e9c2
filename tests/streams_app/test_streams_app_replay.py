"""Replays of uncommitted records (no broker): origin-tagged table entries make a replayed record re-emit.

A "process" is one `Processor`; a crash is a new `Processor` over the same tables (what RocksDB or the
changelog kept) that sees the uncommitted records again at their original offsets.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from paysync.codec import AvroCodec
from streams.metrics import StreamMetrics
from streams.outputs import Origin, OutputEncoder, Target
from streams.ports import RealMapper
from streams.processor import Processor, Tables
from streams.settings import StreamSettings
from streams_app_gen import Rec, encode, fold, generate, redeliver, run_in_process


NOW = 1_800_000_000_000
CODEC = AvroCodec()


def _processor(tables: Tables | None = None) -> Processor:
    return Processor(RealMapper(StreamSettings().mapping), CODEC, StreamMetrics(CollectorRegistry()), tables or Tables())


@pytest.fixture(scope="module")
def stream() -> list[Rec]:
    return generate(seed=4, customers=8, charges=40, payouts=2)


@pytest.fixture(scope="module")
def expected(stream: list[Rec]) -> dict[Any, Any]:
    return fold(run_in_process(stream, _processor()))


class Log:
    """The input topic (one partition) and the internal payout topic, with a payout consumer position."""

    def __init__(self, records: list[Rec]) -> None:
        self.records = records
        self.payouts: list[dict[str, Any]] = []

    def run(self, proc: Processor, start: int = 0, stop: int | None = None, payout_from: int = 0) -> list[Any]:
        """Handle inputs[start:stop] and every payout message from `payout_from`; returns the upserts produced."""
        upserts: list[dict[str, Any]] = []
        cursor = payout_from

        def take(step: Any) -> None:
            for out in step.outputs:
                if out.target is Target.UPSERT:
                    upserts.append(out.value)
                elif out.target is Target.PAYOUT:
                    self.payouts.append(out.value)
            proc.apply(step)

        for offset in range(start, len(self.records) if stop is None else stop):
            rec = self.records[offset]
            origin = Origin(rec.kind, 0, offset)
            data = encode(CODEC, rec)
            if rec.kind == "events":
                take(proc.on_event(rec.key.encode(), data, origin, NOW))
            else:
                take(proc.on_balance_transaction(rec.key.encode(), data, origin, NOW))
            while cursor < len(self.payouts):
                take(proc.on_payout_message(self.payouts[cursor], NOW, Origin("payout-join", 0, cursor)))
                cursor += 1
        return upserts


@pytest.mark.parametrize("seed", [1, 2])
def test_a_replay_with_every_output_lost_rebuilds_the_final_state(
    stream: list[Rec], expected: dict[Any, Any], seed: int
) -> None:
    log = Log(redeliver(stream, times=2, seed=seed))
    tables = Tables()
    first = log.run(_processor(tables))
    assert fold(first) == expected
    # crash before any commit: the outputs are gone, the tables stay, everything is handled again
    replayed = log.run(_processor(tables))
    assert fold(replayed) == expected


def test_a_replay_from_the_middle_completes_the_state(stream: list[Rec], expected: dict[Any, Any]) -> None:
    log = Log(redeliver(stream, times=2, seed=3))
    tables = Tables()
    half = len(log.records) // 2
    committed = log.run(_processor(tables), stop=half)
    payouts_committed = len(log.payouts)
    log.run(_processor(tables), start=half, payout_from=payouts_committed)  # its outputs are lost
    replayed = log.run(_processor(tables), start=half, payout_from=payouts_committed)
    assert fold(committed + replayed) == expected


def test_a_true_duplicate_is_still_dropped_after_a_restart(stream: list[Rec]) -> None:
    tables = Tables()
    rec = stream[0]
    data = encode(CODEC, rec)
    first = _processor(tables)
    first.apply(first.on_event(rec.key.encode(), data, Origin("events", 0, 10), NOW))
    again = _processor(tables)
    assert again.on_event(rec.key.encode(), data, Origin("events", 0, 11), NOW).outputs == []
    assert again.on_event(rec.key.encode(), data, Origin("events", 1, 10), NOW).outputs == []
    assert again.on_event(rec.key.encode(), data, Origin("events", 0, 10), NOW).outputs  # its own: re-emitted


def test_the_same_offset_twice_in_one_process_is_a_duplicate(stream: list[Rec]) -> None:
    proc = _processor()
    rec = stream[0]
    data = encode(CODEC, rec)
    proc.apply(proc.on_event(rec.key.encode(), data, Origin("events", 0, 10), NOW))
    assert proc.on_event(rec.key.encode(), data, Origin("events", 0, 10), NOW).outputs == []


def test_an_older_record_meeting_a_later_uncommitted_write_stays_silent(stream: list[Rec]) -> None:
    created = next(r for r in stream if r.value.get("event_type") == "customer.created")
    updated = next(r for r in stream if r.value.get("event_type") == "customer.updated"
                   and r.value["object_id"] == created.value["object_id"])
    tables = Tables()
    first = _processor(tables)
    for offset, rec in ((5, created), (9, updated)):
        first.apply(first.on_event(rec.key.encode(), encode(CODEC, rec), Origin("events", 0, offset), NOW))
    again = _processor(tables)
    assert again.on_event(created.key.encode(), encode(CODEC, created), Origin("events", 0, 5), NOW).outputs == []
    newest = again.on_event(updated.key.encode(), encode(CODEC, updated), Origin("events", 0, 9), NOW).outputs
    assert newest and all(o.value["source_event_id"] == updated.value["event_id"] for o in newest
                          if o.target is Target.UPSERT and o.value["source_event_id"])


def test_the_fast_upsert_encoder_writes_the_codecs_bytes(stream: list[Rec]) -> None:
    encoder = OutputEncoder(CODEC)
    proc = _processor()
    outputs = []
    for offset, rec in enumerate(stream):
        method = proc.on_event if rec.kind == "events" else proc.on_balance_transaction
        step = method(rec.key.encode(), encode(CODEC, rec), Origin(rec.kind, 0, offset), NOW)
        proc.apply(step)
        outputs += [o for o in step.outputs if o.target is Target.UPSERT]
    assert len(outputs) > 50
    for out in outputs:
        assert encoder.encode(out) == CODEC.encode("paysync.SalesforceUpsert", out.value)
    odd = outputs[0].__class__(Target.UPSERT, b"k", dict(outputs[0].value, fields={"N__c": -(1 << 62), "S__c": "ü"},
                                                          origin_offset=(1 << 63) - 1, ingested_at=int(time.time())))
    assert encoder.encode(odd) == CODEC.encode("paysync.SalesforceUpsert", odd.value)
    with pytest.raises(ValueError):  # a float is not a valid field value: the codec's own error
        encoder.encode(outputs[0].__class__(Target.UPSERT, b"k", dict(outputs[0].value, fields={"X": 1.5})))


def test_a_failed_delivery_ends_the_process_before_any_commit() -> None:
    import subprocess
    import sys

    script = (
        "import asyncio\n"
        "from streams.delivery import fail_stop\n"
        "loop = asyncio.new_event_loop()\n"
        "ok = loop.create_future(); ok.set_result(None); fail_stop(ok)\n"
        "bad = loop.create_future(); bad.set_exception(RuntimeError('broker gone')); fail_stop(bad)\n"
        "print('still running')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 70 and "still running" not in done.stdout
