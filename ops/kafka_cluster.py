"""A local replicated Kafka cluster: N combined broker+controller nodes (KRaft, a static N-voter quorum) on
127.0.0.1 from the same Maven jars as `ops.broker`, each node with its own ports and data folder
(`<data_dir>/node<id>`); the cluster's ports and id are kept in `<data_dir>/cluster.json`.

The quorum is static: every node lists every voter in `controller.quorum.voters`, and all nodes are formatted
with one cluster id. Kafka 3.9, "KRaft" (kafka.apache.org/39/operations/kraft): "All the controllers must be
enumerated. Each controller is identified with their id, host and port information", e.g.
`controller.quorum.voters=id1@host1:port1,id2@host2:port2,id3@host3:port3`; and "A majority of the controllers
must be alive in order to maintain availability. With 3 controllers, the cluster can tolerate 1 controller
failure". (3.9 also offers a dynamic quorum, `controller.quorum.bootstrap.servers` formatted with
`--initial-controllers`; the static form is simpler for a fixed local cluster and still supported.)

With three nodes or more, internal topics are replicated three times with a minimum ISR of 2
(`ops.broker._server_properties`); one node keeps 1.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ops.broker import (BrokerConfig, BrokerError, BrokerStatus, abort, check_can_start, kill, launch,
                        new_cluster_id, quiet_logger, status, stop, wait_ready)
from paysync.paths import state_dir


@dataclass(frozen=True)
class ClusterConfig:
    """Where each node of the local cluster listens, and the folder holding every node's data."""

    ports: tuple[int, ...]
    controller_ports: tuple[int, ...]
    data_dir: Path = field(default_factory=lambda: state_dir() / "kafka")
    jars_dir: Path = field(default_factory=lambda: BrokerConfig().jars_dir)
    heap: str = "512m"
    session_timeout_ms: int = 6000

    def __post_init__(self) -> None:
        if len(self.ports) != len(self.controller_ports) or not self.ports:
            raise BrokerError(f"{len(self.ports)} client port(s) but {len(self.controller_ports)} controller port(s)")
        if len(set(self.ports + self.controller_ports)) != 2 * len(self.ports):
            raise BrokerError(f"ports must all differ: {self.ports} {self.controller_ports}")

    @property
    def size(self) -> int:
        return len(self.ports)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    @property
    def cluster_file(self) -> Path:
        return self.data_dir / "cluster.json"

    @property
    def voters(self) -> str:
        return ",".join(f"{i + 1}@127.0.0.1:{c}" for i, c in enumerate(self.controller_ports))

    def node(self, node_id: int) -> BrokerConfig:
        """Node `node_id` (1-based) as a broker config."""
        i = node_id - 1
        return BrokerConfig(port=self.ports[i], controller_port=self.controller_ports[i],
                            data_dir=self.data_dir / f"node{node_id}", jars_dir=self.jars_dir, heap=self.heap,
                            node_id=node_id, voters=self.voters, replicas=min(3, self.size),
                            session_timeout_ms=self.session_timeout_ms)

    def nodes(self) -> list[BrokerConfig]:
        return [self.node(i + 1) for i in range(self.size)]


def consecutive(first: int, count: int) -> tuple[int, ...]:
    """`count` ports from `first` on."""
    return tuple(first + i for i in range(count))


def recorded(data_dir: Path) -> dict[str, Any] | None:
    """What the last cluster start in `data_dir` wrote (ports, cluster id), or None when it holds no cluster."""
    try:
        info = json.loads((data_dir / "cluster.json").read_text(encoding="utf-8"))
        return info if isinstance(info, dict) and "ports" in info else None
    except (OSError, ValueError):
        return None


def from_record(data_dir: Path, jars_dir: Path | None = None) -> ClusterConfig | None:
    """The cluster recorded in `data_dir` (for `status` and `stop` without ports), or None."""
    info = recorded(data_dir)
    if info is None:
        return None
    cfg = ClusterConfig(tuple(info["ports"]), tuple(info["controller_ports"]), data_dir=data_dir)
    return replace(cfg, jars_dir=jars_dir) if jars_dir else cfg


def cluster_status(cfg: ClusterConfig) -> list[BrokerStatus]:
    """Each node's status, in node order."""
    return [status(n) for n in cfg.nodes()]


def describe(cfg: ClusterConfig) -> str:
    """One line per node for `paysync kafka status`."""
    return "\n".join(f"node {n.node_id}: {st.describe()}" for n, st in zip(cfg.nodes(), cluster_status(cfg)))


def start_cluster(cfg: ClusterConfig, fresh: bool = False, timeout: float = 120.0) -> tuple[str, bool]:
    """Start every node not running yet and wait until all are brokers in the metadata; (bootstrap, started_now).

    Idempotent: a cluster whose nodes all run is left alone. The quorum needs a majority of voters, so every node
    is launched before any readiness wait.
    """
    states = cluster_status(cfg)
    if all(s.running for s in states) and not fresh:
        return cfg.bootstrap, False
    if fresh:
        stop_cluster(cfg)
        shutil.rmtree(cfg.data_dir, ignore_errors=True)
    single = BrokerConfig(data_dir=cfg.data_dir)
    if status(single).running:
        raise BrokerError(f"a one-node broker runs with data in {cfg.data_dir}; stop it or choose another --data-dir")
    info = recorded(cfg.data_dir)
    if info is not None and int(info.get("nodes", 0)) != cfg.size:
        raise BrokerError(f"{cfg.data_dir} holds a {info.get('nodes')}-node cluster; use --nodes {info.get('nodes')} "
                          "or --fresh")
    cluster_id = str(info["cluster_id"]) if info else new_cluster_id()
    down = [n for n, s in zip(cfg.nodes(), states) if not s.running]
    check_can_start([p for n in down for p in (n.port, n.controller_port)])
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    cfg.cluster_file.write_text(json.dumps({"nodes": cfg.size, "ports": list(cfg.ports), "cluster_id": cluster_id,
                                            "controller_ports": list(cfg.controller_ports)}), encoding="utf-8")
    procs = [(n, launch(n, cluster_id)) for n in down]
    alive = lambda: all(p.poll() is None for _, p in procs)  # noqa: E731
    deadline = time.monotonic() + timeout
    try:  # every node's own metadata lists every broker: a client asking any of them sees the whole cluster
        for node in cfg.nodes():
            wait_ready(node.bootstrap, max(1.0, deadline - time.monotonic()), alive=alive, brokers=cfg.size)
    except BrokerError as exc:
        errors = [abort(n, p, exc) for n, p in procs]
        raise errors[0] from None
    return cfg.bootstrap, True


def stop_cluster(cfg: ClusterConfig, grace: float = 20.0) -> bool:
    """Stop every node at once (SIGTERM: controlled shutdown; SIGKILL after `grace` s); whether any was running.

    At once, not one after another: a node left alone has no quorum, and its controlled shutdown would wait for a
    controller until `grace` runs out."""
    nodes = cfg.nodes()
    results: list[bool] = [False] * len(nodes)

    def stop_one(i: int) -> None:
        results[i] = stop(nodes[i], grace)

    threads = [threading.Thread(target=stop_one, args=(i,), name=f"stop-node{i + 1}") for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return any(results)


def stop_node(cfg: ClusterConfig, node_id: int, grace: float = 20.0) -> bool:
    """Stop one node with a controlled shutdown (its leaderships move first)."""
    return stop(cfg.node(node_id), grace)


def kill_node(cfg: ClusterConfig, node_id: int) -> bool:
    """SIGKILL one node."""
    return kill(cfg.node(node_id))


def start_node(cfg: ClusterConfig, node_id: int, timeout: float = 90.0) -> None:
    """Start one stopped node again (same ports and data) and wait until it is a broker in the metadata."""
    node = cfg.node(node_id)
    if status(node).running:
        return
    info = recorded(cfg.data_dir)
    check_can_start([node.port, node.controller_port])
    proc = launch(node, str(info["cluster_id"]) if info else None)
    try:
        wait_ready(node.bootstrap, timeout, alive=lambda: proc.poll() is None, brokers=cfg.size)
        wait_broker(cfg.bootstrap, node_id, timeout, alive=lambda: proc.poll() is None)
    except BrokerError as exc:
        raise abort(node, proc, exc) from None


def wait_broker(bootstrap: str, node_id: int, timeout: float, alive: Any = None) -> None:
    """Return when broker `node_id` is in the cluster's metadata; BrokerError after `timeout` seconds."""
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise BrokerError(f"node {node_id} exited during start-up")
        try:
            if node_id in admin.list_topics(timeout=1.0).brokers:
                return
        except Exception:  # noqa: BLE001 - not ready yet, any client error means "try again"
            pass
        time.sleep(0.2)
    raise BrokerError(f"node {node_id} was not in the metadata of {bootstrap} within {timeout:.0f} s")


def under_replicated(bootstrap: str, prefix: str = "") -> list[str]:
    """`topic/partition` of every partition (of topics starting with `prefix`) whose ISR lacks a replica."""
    md = _admin(bootstrap).list_topics(timeout=10.0)
    return sorted(f"{t.topic}/{p.id}" for t in md.topics.values() if t.topic.startswith(prefix)
                  for p in t.partitions.values() if len(p.isrs) < len(p.replicas))


def wait_in_sync(bootstrap: str, timeout: float, prefix: str = "") -> list[str]:
    """Wait until no partition is under-replicated (a restarted node caught up); returns those still behind."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            behind = under_replicated(bootstrap, prefix)
        except Exception as exc:  # noqa: BLE001 - a metadata call may fail during an election
            behind = [f"metadata: {exc}"]
        if not behind or time.monotonic() >= deadline:
            return behind
        time.sleep(0.5)


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "log_level": 0, "logger": quiet_logger()}
    return AdminClient(conf)
