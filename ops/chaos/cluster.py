"""Chaos on a replicated cluster (issue 18): the whole pipeline on a local 3-node KRaft cluster (`ops.kafka_cluster`)
while nodes fail under load. The runner (`ops.chaos.runner.run`) drives the traffic and checks the invariants
(reconcile CLEAN, every payout Reconciled, nothing duplicated); the node faults are action kinds registered in its
`EXTRA_ACTIONS`; a recording proxy (`ops.chaos.recorder`) between the simulator and the receiver measures the
longest window of non-2xx answers, and after the run every webhook the receiver acknowledged must be on
stripe.events as `source=webhook` (no acknowledged webhook lost).

Scenarios (`CLUSTER_SCENARIOS`), in the order they fire when combined:
- cluster-kill-leader: SIGKILL the node leading the busiest data partition; it is started again a few seconds later;
- cluster-node-down: a controlled stop of one node for a while, then back: it must catch up (every ISR full again);
- cluster-rolling-restart: each node stopped and started in turn, the next only once the previous caught up.

By hand: `paysync chaos cluster-all` (or one scenario by name) starts a private cluster (`cluster_session`), runs
them, and prints the verdict and the figures (`figures_line`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from confluent_kafka import Consumer, TopicPartition

from ops.chaos import runner
from ops.chaos.recorder import DeliveryRecorder, longest_failure_window
from ops.chaos.runner import RunConfig, RunResult
from ops.chaos.scenarios import Action, Plan, plan as base_plan
from ops.kafka_cluster import ClusterConfig, kill_node, start_node, stop_cluster, stop_node, wait_in_sync
from ops.pipeline import LocalPipeline
from paysync.codec import AvroCodec
from paysync.topics import SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS

CLUSTER_SCENARIOS: dict[str, str] = {
    "cluster-kill-leader": "SIGKILL the node leading the busiest partition mid-stream; it comes back a few s later",
    "cluster-node-down": "stop one node under load for a while, then start it again: it must catch up",
    "cluster-rolling-restart": "restart all three nodes one after another under load (each in sync before the next)",
}
_DATA_TOPICS = (STRIPE_EVENTS, STRIPE_BALANCE_TRANSACTIONS, SALESFORCE_UPSERTS)


@dataclass
class _Active:
    """What the node-fault actions of the current run share: the cluster, the recorder, the figures."""

    cluster: ClusterConfig
    catch_up_s: float
    recorder: DeliveryRecorder | None = None
    pipeline: LocalPipeline | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_ACTIVE: dict[str, _Active] = {}  # by bootstrap: the run the registered actions act on


def cluster_plan(names: list[str], events: int, rate: float, seed: int, node_down_s: float = 10.0,
                 kill_back_s: float = 5.0) -> Plan:
    """The runner's plan for cluster scenario `names`: the base knobs of every chaos run, a first action that puts
    the recorder in front of the receiver, then the node faults at seeded moments in the traffic window."""
    unknown = set(names) - set(CLUSTER_SCENARIOS)
    if unknown or not names:
        raise ValueError(f"unknown cluster scenario(s): {sorted(unknown)}; known: {', '.join(CLUSTER_SCENARIOS)}")
    p = base_plan([], events, rate, seed)
    p.names = [n for n in CLUSTER_SCENARIOS if n in names]
    rng = random.Random(f"cluster-chaos:{seed}:{','.join(p.names)}")
    window = max(10.0, events / rate if rate else 10.0)
    p.actions = [Action(0.0, "cluster-record")]
    if "cluster-kill-leader" in p.names:
        p.actions.append(Action(rng.uniform(0.1, 0.2) * window, "cluster-kill-leader", duration=kill_back_s))
    if "cluster-node-down" in p.names:
        p.actions.append(Action(rng.uniform(0.3, 0.4) * window, "cluster-node-down",
                                target=str(rng.randint(1, 3)), duration=node_down_s))
    if "cluster-rolling-restart" in p.names:
        p.actions.append(Action(rng.uniform(0.5, 0.6) * window, "cluster-rolling-restart"))
    return p


def active_run(p: LocalPipeline) -> _Active:
    """The cluster run `p` belongs to (registered by `run_on_cluster`); node-fault actions elsewhere (bench/soak.py)
    use it too."""
    act = _ACTIVE.get(p.bootstrap)
    if act is None:
        raise RuntimeError(f"no cluster registered for {p.bootstrap}: run cluster scenarios with run_on_cluster()")
    act.pipeline = p
    return act


def _record(p: LocalPipeline, action: Action, counts: Counter[str]) -> None:
    """Put the recording proxy between the simulator and the receiver."""
    act = active_run(p)
    assert p.stripe is not None
    act.recorder = DeliveryRecorder(f"http://127.0.0.1:{p.ports['webhook']}/webhooks/stripe").start()
    p.stripe.configure(webhook_url=act.recorder.url)


def busiest_leader(p: LocalPipeline) -> tuple[int, str]:
    """(node id, "topic/partition") of the leader of the data partition holding the most records."""
    best: tuple[int, str, int] = (-1, "", -1)
    consumer = Consumer({"bootstrap.servers": p.bootstrap, "group.id": f"{p.prefix}chaos-leader-probe"})
    try:
        for topic in _DATA_TOPICS:
            name = topic.full_name(p.prefix)
            meta = consumer.list_topics(name, timeout=10).topics[name]
            for pid, part in meta.partitions.items():
                high = consumer.get_watermark_offsets(TopicPartition(name, pid), timeout=10)[1]
                if high > best[2] and part.leader >= 0:
                    best = (part.leader, f"{name}/{pid}", high)
    finally:
        consumer.close()
    if best[0] < 0:
        raise RuntimeError("no partition with a leader to kill")
    return best[0], best[1]


def back_in_sync(act: _Active, node_id: int, key: str) -> None:
    """Start `node_id` again and time how long until every partition's ISR is full (the catch-up)."""
    t0 = time.monotonic()
    start_node(act.cluster, node_id, timeout=120)
    behind = wait_in_sync(act.cluster.bootstrap, act.catch_up_s)
    took = time.monotonic() - t0
    with act.lock:
        act.figures[key] = max(float(act.figures.get(key, 0.0)), round(took, 1))
    if behind:
        raise RuntimeError(f"node {node_id} did not catch up within {act.catch_up_s:.0f} s: {behind[:5]}")


def _kill_leader(p: LocalPipeline, action: Action, counts: Counter[str]) -> None:
    act = active_run(p)
    node_id, partition = busiest_leader(p)
    kill_node(act.cluster, node_id)
    counts["node-kills"] += 1
    act.figures.setdefault("killed", []).append(f"node {node_id} (leader of {partition})")
    time.sleep(action.duration)  # a schedule: the node stays dead this long, during traffic
    back_in_sync(act, node_id, "kill-catch-up-s")


def _node_down(p: LocalPipeline, action: Action, counts: Counter[str]) -> None:
    act = active_run(p)
    node_id = int(action.target)
    stop_node(act.cluster, node_id)
    counts["node-outages"] += 1
    time.sleep(action.duration)  # a schedule: the node stays down this long, during traffic
    back_in_sync(act, node_id, "outage-catch-up-s")


def _rolling_restart(p: LocalPipeline, action: Action, counts: Counter[str]) -> None:
    act = active_run(p)
    for node in act.cluster.nodes():
        stop_node(act.cluster, node.node_id)
        counts["node-restarts"] += 1
        back_in_sync(act, node.node_id, "restart-catch-up-s")


runner.EXTRA_ACTIONS.update({"cluster-record": _record, "cluster-kill-leader": _kill_leader,
                             "cluster-node-down": _node_down, "cluster-rolling-restart": _rolling_restart})


def webhook_event_ids(bootstrap: str, prefix: str, timeout: float = 60.0) -> set[str]:
    """The event ids on stripe.events published by the receiver (`source=webhook`), read to the end."""
    topic = STRIPE_EVENTS.full_name(prefix)
    codec = AvroCodec()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{prefix}chaos-ack-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ids: set[str] = set()
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {pid: consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=10)[1] for pid in parts}
        todo = {pid for pid, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, pid, 0) for pid in todo])
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            record = codec.decode(msg.value(), STRIPE_EVENTS.schema)
            if record.get("source") == "webhook":
                ids.add(str(record["event_id"]))
            if int(msg.offset() or 0) + 1 >= ends[int(msg.partition() or 0)]:
                todo.discard(int(msg.partition() or 0))
        if todo:
            raise TimeoutError(f"could not read {topic} to its end within {timeout:.0f} s")
    finally:
        consumer.close()
    return ids


def run_on_cluster(plan: Plan, cfg: RunConfig, cluster: ClusterConfig,
                   say: Callable[[str], None] = lambda s: None, catch_up_s: float = 90.0) -> RunResult:
    """Run a cluster plan on the running `cluster`; the result's faults carry the figures (longest non-2xx window,
    catch-up times, nodes killed) and its violations any acknowledged webhook missing from stripe.events."""
    act = _Active(cluster, catch_up_s)
    _ACTIVE[cluster.bootstrap] = act
    cfg.bootstrap = cluster.bootstrap
    try:
        result = runner.run(plan, cfg, say)
    finally:
        _ACTIVE.pop(cluster.bootstrap, None)
        if act.recorder is not None:
            act.recorder.stop()
    if act.recorder is None or act.pipeline is None:
        result.violations.append("the delivery recorder never started: no 503 window measured")
        return result
    answers = act.recorder.answers()
    window_s, failed = longest_failure_window(answers)
    acked = act.recorder.acknowledged()
    lost = acked - webhook_event_ids(cluster.bootstrap, act.pipeline.prefix)
    if lost:
        result.violations.append(f"{len(lost)} acknowledged webhook(s) not on stripe.events: {sorted(lost)[:5]}")
    result.faults.update(act.figures)
    result.faults.update({"deliveries": len(answers), "webhook-non-2xx": sum(not 200 <= a.status < 300 for a in answers),
                          "longest-non-2xx-window-s": round(window_s, 2), "longest-window-answers": failed,
                          "webhooks-acknowledged": len(acked)})
    return result


def private_cluster(data_dir: Path, nodes: int = 3) -> ClusterConfig:
    """Start a fresh private cluster of `nodes` nodes on free ports with its data in `data_dir`; stop it with
    `ops.kafka_cluster.stop_cluster`."""
    from ops.kafka_cluster import start_cluster
    from paysync.net import free_port

    cluster = ClusterConfig(tuple(free_port() for _ in range(nodes)), tuple(free_port() for _ in range(nodes)),
                            data_dir=data_dir)
    start_cluster(cluster, fresh=True)
    return cluster


ClusterRun = Callable[[Plan, RunConfig, Callable[[str], None]], RunResult]


@contextmanager
def cluster_session(data_dir: Path, catch_up_s: float = 90.0) -> Iterator[ClusterRun]:
    """A fresh private 3-node cluster in `data_dir` for the block: yields `run(plan, cfg, say)` running a cluster plan
    on it (`run_on_cluster`); the cluster is stopped when the block ends."""
    cluster = private_cluster(data_dir)
    try:
        yield lambda plan, cfg, say: run_on_cluster(plan, cfg, cluster, say, catch_up_s)
    finally:
        stop_cluster(cluster)


def figures_line(result: RunResult) -> str:
    """The figures issue 18 asks of a cluster run, on one line: the longest non-2xx window, settle time, events,
    the nodes killed, stopped and restarted, the catch-up times, and the webhooks acknowledged."""
    f, d = result.faults, result.details
    window = (f"longest non-2xx window {f['longest-non-2xx-window-s']:.2f} s ({f['longest-window-answers']} answer(s); "
              f"{f['webhook-non-2xx']} of {f['deliveries']} deliveries non-2xx)"
              if "longest-non-2xx-window-s" in f else "longest non-2xx window not measured")
    parts = [window, f"settle {result.settle_s:.1f} s", f"events {result.events}",
             f"node kills {f.get('node-kills', 0)}" + (f" ({'; '.join(f['killed'])})" if f.get("killed") else ""),
             f"node outages {f.get('node-outages', 0)}", f"node restarts {f.get('node-restarts', 0)}"]
    catch_up = [f"{k.removesuffix('-catch-up-s')} {f[k]:.1f} s" for k in
                ("kill-catch-up-s", "outage-catch-up-s", "restart-catch-up-s") if k in f]
    if catch_up:
        parts.append("catch-up (longest) " + ", ".join(catch_up))
    if "webhooks-acknowledged" in f:
        parts.append(f"webhooks acknowledged {f['webhooks-acknowledged']}")
    if "salesforce_records" in d:
        parts.append(f"Salesforce records {d['salesforce_records']} of {d.get('expected_records')} expected, "
                     f"payouts {d.get('payouts_reconciled')} Reconciled + {d.get('payouts_manual')} manual "
                     f"of {d.get('payouts')}")
    return "  figures: " + " · ".join(parts)
