"""`paysync run`: start the pipeline's components against the configured Stripe, Salesforce and Kafka.

All in one (`paysync run`: every component as a supervised child process, restarted if it dies) or
one component per process (`paysync run --only sink`, for one container or unit per component).
Configuration is the components' own `PAYSYNC_*` environment; nothing here reads secrets.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from paysync.logs import setup_logging
from paysync.paths import state_dir

from ops.cli import COMMANDS
from ops.supervisor import Supervisor

COMPONENTS = ("webhook", "poll", "stream", "sink")


def main(argv: list[str]) -> int:
    """Run the chosen components until SIGINT/SIGTERM."""
    p = argparse.ArgumentParser(prog="paysync run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=COMPONENTS, help="run this one component in this process")
    p.add_argument("--components", default=",".join(COMPONENTS),
                   help=f"comma-separated components to supervise (default {','.join(COMPONENTS)})")
    p.add_argument("--stream-workers", type=int, default=1, help="stream workers to run (they share partitions)")
    p.add_argument("--log-dir", type=Path, default=None, help="component logs (default $PAYSYNC_HOME/run/logs)")
    args, rest = p.parse_known_args(argv)
    if args.only:
        module_name, func = COMMANDS[args.only][0].split(":")
        import importlib

        return int(getattr(importlib.import_module(module_name), func)(rest) or 0)
    chosen = [c.strip() for c in args.components.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(COMPONENTS))
    if unknown:
        p.error(f"unknown component(s): {', '.join(unknown)}")
    setup_logging()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log_dir = (args.log_dir or state_dir() / "run" / "logs").resolve()
    with Supervisor(log_dir) as supervisor:
        for name in chosen:
            if name == "stream":
                for i in range(args.stream_workers):
                    supervisor.add(f"stream{i}", ["stream", "--data-dir", str(state_dir() / "run" / f"stream{i}")])
            else:
                supervisor.add(name, [name])
        sys.stderr.write(f"paysync run: {', '.join(supervisor.components)} running; logs in {log_dir}\n")
        stop.wait()
    return 0
