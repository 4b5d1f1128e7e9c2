"""`paysync kafka start | stop | status [--nodes N]`: the local KRaft broker, or a local replicated cluster of N
nodes (`ops.kafka_cluster`), for the demo and the tests."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ops.broker import BrokerConfig, BrokerError, start, status, stop
from ops.kafka_cluster import (ClusterConfig, cluster_status, consecutive, describe, from_record, start_cluster,
                               stop_cluster)
from paysync.paths import state_dir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync kafka", description="Run a local Apache Kafka broker (KRaft, no Docker).")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--nodes", type=int, default=None,
                   help="start: nodes of a replicated cluster (default 1, or the cluster the data folder holds)")
    p.add_argument("--port", type=str, default=None,
                   help="client port on 127.0.0.1 (default 9092); a cluster: the first of N consecutive ports, or a "
                        "comma-separated list")
    p.add_argument("--controller-port", type=str, default=None,
                   help="KRaft controller port (default: the port after the client ports); a cluster: the first of N, "
                        "or a list")
    p.add_argument("--data-dir", type=Path, default=None, help="broker data (default $PAYSYNC_HOME/kafka)")
    p.add_argument("--jars-dir", type=Path, default=None, help="jar cache (default ~/.cache/paysync/kafka-VERSION)")
    p.add_argument("--fresh", action="store_true", help="start: wipe the data folder first")
    p.add_argument("--timeout", type=float, default=120.0, help="start: seconds to wait for the broker(s)")
    return p


def _ports(value: str | None, default_first: int, count: int) -> tuple[int, ...]:
    """`count` ports from a list ("a,b,c") or a first port; BrokerError when the list has another length."""
    if value is None:
        return consecutive(default_first, count)
    try:
        items = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise BrokerError(f"not a port or a list of ports: {value!r}") from None
    if len(items) == 1:
        return consecutive(items[0], count)
    if len(items) != count:
        raise BrokerError(f"{len(items)} ports given for {count} node(s): {value}")
    return items


def _cluster(args: argparse.Namespace, data_dir: Path, jars_dir: Path) -> ClusterConfig | None:
    """The cluster this command is about, or None for the one-node broker."""
    known = from_record(data_dir, jars_dir)
    nodes = args.nodes if args.nodes is not None else (known.size if known else 1)
    if nodes < 1:
        raise BrokerError(f"--nodes must be at least 1, not {nodes}")
    if nodes == 1 and (known is None or args.nodes == 1):
        return None
    if known is not None and args.port is None and args.controller_port is None and known.size == nodes:
        return known
    ports = _ports(args.port, 9092, nodes)
    return ClusterConfig(ports, _ports(args.controller_port, max(ports) + 1, nodes), data_dir=data_dir,
                         jars_dir=jars_dir)


def _single(args: argparse.Namespace, data_dir: Path, jars_dir: Path) -> BrokerConfig:
    port = _ports(args.port, 9092, 1)[0]
    return BrokerConfig(port=port, controller_port=_ports(args.controller_port, port + 1, 1)[0],
                        data_dir=data_dir, jars_dir=jars_dir)


def _run_cluster(action: str, cfg: ClusterConfig, args: argparse.Namespace) -> int:
    if action == "start":
        t0 = time.monotonic()
        bootstrap, started = start_cluster(cfg, fresh=args.fresh, timeout=args.timeout)
        if started:
            print(f"kafka cluster of {cfg.size} nodes started at {bootstrap} in {time.monotonic() - t0:.1f} s "
                  f"(data in {cfg.data_dir})")
        else:
            print(f"kafka cluster of {cfg.size} nodes is already running at {bootstrap}")
        print(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
    elif action == "stop":
        print(f"kafka cluster of {cfg.size} nodes stopped" if stop_cluster(cfg) else "kafka cluster was not running")
    else:
        print(describe(cfg))
        return 0 if all(s.running for s in cluster_status(cfg)) else 3
    return 0


def main(argv: list[str]) -> int:
    """Run the action; one clear line on stderr and exit 1 when the broker (or a node) cannot start.

    `status` exits 0 when the broker (every node) runs, 3 otherwise.
    """
    args = _parser().parse_args(argv)
    data_dir = (args.data_dir or state_dir() / "kafka").resolve()
    jars_dir = (args.jars_dir or BrokerConfig().jars_dir).resolve()
    try:
        cluster = _cluster(args, data_dir, jars_dir)
        if cluster is not None:
            return _run_cluster(args.action, cluster, args)
        cfg = _single(args, data_dir, jars_dir)
        if args.action == "start" and from_record(data_dir) is not None and not args.fresh:
            raise BrokerError(f"{data_dir} holds a cluster; start it with --nodes, or use --fresh or another --data-dir")
        if args.action == "start":
            t0 = time.monotonic()
            bootstrap, started = start(cfg, fresh=args.fresh, timeout=args.timeout)
            if started:
                print(f"kafka started at {bootstrap} in {time.monotonic() - t0:.1f} s (data in {cfg.data_dir})")
            else:
                print(f"kafka is already running at {bootstrap}")
            print(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
        elif args.action == "stop":
            print("kafka stopped" if stop(cfg) else "kafka was not running")
        else:
            st = status(cfg)
            print(st.describe())
            return 0 if st.running else 3
    except BrokerError as exc:
        print(f"paysync kafka {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
