"""py-spy's raw profiles (`py-spy record --format raw`: one `frame;frame;…;leaf count` line per distinct stack,
each frame `function (file:line)`, outermost first) summarised by function and by layer of the stream worker.

A sample is charged to one layer: the innermost frame that belongs to a named layer (Faust/mode, aiokafka's
producer or consumer path, RocksDB, the Avro codec, our code) decides — a `json` leaf under our mapping is our
mapping, a `fastavro` leaf under Faust's table is the codec. Generic aiokafka frames (connections, protocol,
record batches) take the producer or consumer path of the nearest frame above them that has one. A stack with no
named frame below its event-loop runner (uvloop runs natively: its own work is a sample whose leaf is the frame
that started the loop) is the event loop's; one with no runner at all is "other"."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

FAUST = "Faust/mode stream machinery"
PRODUCER = "aiokafka producer path"
CONSUMER = "aiokafka consumer path"
KAFKA_IO = "aiokafka connections/protocol"
ROCKSDB = "RocksDB"
AVRO = "Avro codec"
OURS = "our processor/mapping"
LOOP = "event loop (uvloop's native code, asyncio)"
OTHER = "other"
LAYERS = (FAUST, PRODUCER, CONSUMER, KAFKA_IO, ROCKSDB, AVRO, OURS, LOOP, OTHER)

_OUR_PACKAGES = ("streams/", "core/", "paysync/", "producers/")
# Frames that run an event loop (uvloop's is native code: its own work shows as a sample whose leaf is the runner);
# frames above them (entry points, thread bootstrap) never decide a layer.
_LOOP_RUNNERS = {("mode/worker.py", "Worker.execute_from_commandline"),
                 ("mode/threads.py", "ServiceThread._start_thread")}
_LOOP_FILES = ("asyncio/base_events.py", "asyncio/events.py", "asyncio/runners.py", "selectors.py")


@dataclass(frozen=True)
class Frame:
    """One py-spy frame: `function (file:line)` split; `file` is py-spy's short path (`faust/streams/stream.py`)."""

    function: str
    file: str

    @classmethod
    def parse(cls, text: str) -> Frame:
        """`Stream._py_aiter (faust/streams/stream.py:812)` -> Frame; a frame without a location keeps `file` ""."""
        function, sep, rest = text.rpartition(" (")
        if not sep or not rest.endswith(")"):
            return cls(text, "")
        return cls(function, rest[:-1].rsplit(":", 1)[0])

    def short(self) -> str:
        return f"{self.function} ({self.file})" if self.file else self.function


def parse_raw(text: str) -> list[tuple[list[Frame], int]]:
    """The stacks of a raw py-spy profile, outermost frame first, with their sample counts; bad lines skipped."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([Frame.parse(f) for f in stack.split(";")], int(count)))
    return stacks


def frame_layer(frame: Frame) -> str | None:
    """The layer a frame belongs to by its file (and, in Faust's aiokafka driver, its class); None for
    stdlib/other frames, which take the layer of their caller. Generic aiokafka frames are KAFKA_IO."""
    f, fn = frame.file, frame.function
    if f.startswith("rocksdict/") or f == "faust/stores/rocksdb.py" or "Rdict" in fn:
        return ROCKSDB
    if f.startswith("fastavro/") or f == "paysync/codec.py":
        return AVRO
    if f.startswith("aiokafka/producer/") or f == "faust/transport/producer.py":
        return PRODUCER
    if f.startswith("aiokafka/consumer/") or f == "faust/transport/consumer.py":
        return CONSUMER
    if f.startswith("aiokafka/"):
        return KAFKA_IO
    if f == "faust/transport/drivers/aiokafka.py":
        return PRODUCER if "Producer" in fn else CONSUMER if "Consumer" in fn else FAUST
    if f.startswith(("faust/", "mode/")):
        return FAUST
    if f.startswith(_OUR_PACKAGES):
        return OURS
    return None


def is_loop_runner(frame: Frame) -> bool:
    """A frame that runs an event loop (mode's worker and service threads, asyncio's loop)."""
    return (frame.file, frame.function) in _LOOP_RUNNERS or frame.file in _LOOP_FILES


def sample_layer(frames: list[Frame]) -> str:
    """The one layer a sample (outermost frame first) is charged to; see the module's docstring. Walking from the
    leaf, the first named frame decides; reaching an event-loop runner first makes it the loop's sample."""
    pending_io = False
    for frame in reversed(frames):
        if is_loop_runner(frame):
            break
        layer = frame_layer(frame)
        if layer == KAFKA_IO:
            pending_io = True
        elif layer in (PRODUCER, CONSUMER):
            return layer
        elif layer is not None and not pending_io:
            return layer
    else:
        return KAFKA_IO if pending_io else OTHER
    return KAFKA_IO if pending_io else LOOP


@dataclass
class Summary:
    """Shares of the samples (0..1): per layer (each sample once), per function as the leaf (own) and anywhere on
    the stack (total), each function with its layer."""

    samples: int
    layers: dict[str, float]
    own: list[tuple[str, str, float]]
    total: list[tuple[str, str, float]]


def summarise(stacks: list[tuple[list[Frame], int]], top: int = 15, skip_above: float = 0.5) -> Summary:
    """Per-layer and top-`top` per-function shares. `own` rows are (leaf function, the layer its samples were
    charged to), so a `json` leaf under our mapping and one under Faust are two rows; `total` leaves out frames on
    more than `skip_above` of the samples (the event loop and entry points that hold everything)."""
    layers, own, total = Counter[str](), Counter[tuple[Frame, str]](), Counter[Frame]()
    samples = 0
    for frames, n in stacks:
        if not frames:
            continue
        samples += n
        layer = sample_layer(frames)
        layers[layer] += n
        own[(frames[-1], layer)] += n
        for frame in set(frames):
            total[frame] += n
    if not samples:
        return Summary(0, {}, [], [])
    own_rows = [(f.short(), layer, c / samples) for (f, layer), c in own.most_common(top)]
    total_rows = [(f.short(), LOOP if is_loop_runner(f) else frame_layer(f) or "(stdlib/other: its caller's)",
                   c / samples)
                  for f, c in total.most_common() if c / samples <= skip_above][:top]
    return Summary(samples, {name: layers[name] / samples for name in LAYERS if layers[name]}, own_rows, total_rows)


def markdown(summary: Summary) -> list[str]:
    """The summary as three markdown tables: layers, own time, total time."""
    lines = ["| layer | share of samples |", "|---|---:|"]
    lines += [f"| {name} | {share * 100:.1f} % |" for name, share in
              sorted(summary.layers.items(), key=lambda kv: -kv[1])]
    for title, rows in (("Own time (leaf frame)", summary.own),
                        ("Total time (anywhere on the stack; frames on more than half of the samples left out)",
                         summary.total)):
        lines += ["", f"{title}:", "", "| share | function (file) | layer |", "|---:|---|---|"]
        lines += [f"| {share * 100:.1f} % | `{name}` | {layer} |" for name, layer, share in rows]
    return lines
