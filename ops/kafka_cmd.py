"""`paysync kafka start | stop | status`: the local KRaft broker for the demo and the tests."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ops.broker import BrokerConfig, BrokerError, start, status, stop
from paysync.paths import state_dir


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync kafka", description="Run a local Apache Kafka broker (KRaft, no Docker).")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--port", type=int, default=9092, help="client port on 127.0.0.1 (default 9092)")
    p.add_argument("--controller-port", type=int, default=9093, help="KRaft controller port (default 9093)")
    p.add_argument("--data-dir", type=Path, default=None, help="broker data (default $PAYSYNC_HOME/kafka)")
    p.add_argument("--jars-dir", type=Path, default=None, help="jar cache (default ~/.cache/paysync/kafka-VERSION)")
    p.add_argument("--fresh", action="store_true", help="start: wipe the data folder first")
    p.add_argument("--timeout", type=float, default=90.0, help="start: seconds to wait for the broker")
    return p


def main(argv: list[str]) -> int:
    """Run the action; one clear line on stderr and exit 1 when the broker cannot start."""
    args = _parser().parse_args(argv)
    defaults = BrokerConfig()
    cfg = BrokerConfig(
        port=args.port,
        controller_port=args.controller_port,
        data_dir=(args.data_dir or state_dir() / "kafka").resolve(),
        jars_dir=(args.jars_dir or defaults.jars_dir).resolve(),
    )
    try:
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
