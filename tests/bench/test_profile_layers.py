"""The stream worker's profile summary (bench/profile_layers.py): py-spy's raw lines parsed, each sample charged to
one layer by its innermost named frame, and the shares by layer and by function."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from profile_layers import (  # noqa: E402
    AVRO, CONSUMER, FAUST, KAFKA_IO, LOOP, OTHER, OURS, PRODUCER, ROCKSDB, Frame, markdown, parse_raw, sample_layer,
    summarise,
)

ROOT = "<module> (paysync:6);main (streams/cli.py:106);Worker.execute_from_commandline (mode/worker.py:264)"


def _stack(*frames: str) -> list[Frame]:
    return [Frame.parse(f) for f in (*ROOT.split(";"), *frames)]


def test_a_raw_line_is_frames_outermost_first_and_its_count_and_bad_lines_are_skipped() -> None:
    stacks = parse_raw(f"{ROOT};Store._set (faust/stores/rocksdb.py:480) 14\n\nnot a profile line\n")
    assert len(stacks) == 1
    frames, count = stacks[0]
    assert count == 14
    assert frames[0] == Frame("<module>", "paysync")
    assert frames[-1] == Frame("Store._set", "faust/stores/rocksdb.py")


@pytest.mark.parametrize(("frames", "layer"), [
    # a stdlib leaf takes its caller's layer: json under our processor is ours, under fastavro it is the codec
    (("Intake.handle (streams/intake.py:72)", "_parse_json (streams/processor.py:62)", "loads (json/__init__.py:346)"),
     OURS),
    (("AvroCodec.decode (paysync/codec.py:90)", "schemaless_reader (fastavro/_read_py.py:1)"), AVRO),
    # the innermost named frame wins over our callers above it
    (("Processor.apply (streams/processor.py:248)", "ManagedUserDict.__setitem__ (mode/utils/collections.py:777)",
      "Store._set (faust/stores/rocksdb.py:480)"), ROCKSDB),
    (("Agent._execute_actor (faust/agents/agent.py:698)", "Stream._c_aiter (faust/streams.py:1)"), FAUST),
    # generic aiokafka frames take the path of the nearest producer/consumer frame above them
    (("Sender._send_produce_req (aiokafka/producer/sender.py:288)", "AIOKafkaConnection.send (aiokafka/conn.py:423)",
      "StreamWriter.write (asyncio/streams.py:343)"), PRODUCER),
    (("Fetcher._fetch_requests_routine (aiokafka/consumer/fetcher.py:1)",
      "AIOKafkaConnection._read (aiokafka/conn.py:1)"), CONSUMER),
    # Faust's aiokafka driver holds both paths: its class decides
    (("Producer.send (faust/transport/drivers/aiokafka.py:1)", "get (collections/__init__.py:1)"), PRODUCER),
    (("AIOKafkaConsumerThread.getmany (faust/transport/drivers/aiokafka.py:1)",), CONSUMER),
    (("AIOKafkaConnection._read (aiokafka/conn.py:1)",), KAFKA_IO),
    # uvloop's own work: the leaf is the frame that started the loop
    ((), LOOP),
])
def test_each_sample_is_charged_to_the_layer_of_its_innermost_named_frame(frames: tuple[str, ...], layer: str) -> None:
    assert sample_layer(_stack(*frames)) == layer


def test_frames_above_the_loop_runner_never_decide_and_a_stack_without_one_is_other() -> None:
    # `main (streams/cli.py)` is ours, but it only started the loop
    assert sample_layer(_stack("run (asyncio/events.py:80)")) == LOOP
    assert sample_layer([Frame.parse("f (threading.py:1)"), Frame.parse("g (queue.py:2)")]) == OTHER


def test_the_summary_shares_add_up_by_layer_and_rank_functions_by_own_and_total_time() -> None:
    rocks = f"{ROOT};Intake.handle (streams/intake.py:72);Store._set (faust/stores/rocksdb.py:480)"
    ours = f"{ROOT};Intake.handle (streams/intake.py:72);_parse_json (streams/processor.py:62)"
    s = summarise(parse_raw(f"{rocks} 30\n{ours} 50\n{ROOT} 20\n"))
    assert s.samples == 100
    assert s.layers == pytest.approx({OURS: 0.5, ROCKSDB: 0.3, LOOP: 0.2})
    assert s.own[0] == ("_parse_json (streams/processor.py)", OURS, pytest.approx(0.5))
    assert ("Worker.execute_from_commandline (mode/worker.py)", LOOP, pytest.approx(0.2)) in s.own
    # frames on more than half the samples (the entry points, Intake.handle at 80 %) are left out of `total`
    assert [name for name, _, _ in s.total] == ["_parse_json (streams/processor.py)",
                                                "Store._set (faust/stores/rocksdb.py)"]
    table = markdown(s)
    assert "| our processor/mapping | 50.0 % |" in table
    assert table.index("| our processor/mapping | 50.0 % |") < table.index("| RocksDB | 30.0 % |")


def test_an_empty_profile_has_no_shares() -> None:
    assert summarise(parse_raw("")).samples == 0
