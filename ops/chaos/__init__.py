"""`paysync chaos SCENARIO…`: drive simulated Stripe traffic through the whole local pipeline while injecting
faults, let it settle, and check that Salesforce equals Stripe (reconcile CLEAN, no duplicate, every payout
Reconciled) and that every poison record reached the dead-letter topic with its origin.

Scenarios: kill-receiver, kill-stream, kill-sink, broker-restart, salesforce-faults, session-expiry, api-limit,
redelivery, dropped-webhooks, stripe-429, poison, and `all` (every one at once). Each named scenario runs alone
on a fresh pipeline unless `--together` puts them in one run. A run uses `KAFKA_BOOTSTRAP_SERVERS` when set,
except broker-restart, which needs a broker of its own. Exit status: 0 when every run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from paysync.logs import setup_logging
from paysync.paths import state_dir

from ops.chaos.runner import RunConfig, RunResult, run
from ops.chaos.scenarios import SCENARIOS, expand, plan

__all__ = ["RunConfig", "RunResult", "SCENARIOS", "main", "plan", "run"]


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """Run the scenarios; 0 when every run kept the invariants."""
    ap = argparse.ArgumentParser(prog="paysync chaos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="+", metavar="SCENARIO", help=", ".join([*SCENARIOS, "all"]))
    ap.add_argument("--events", type=int, default=20_000, help="Stripe events per run (default 20000)")
    ap.add_argument("--rate", type=float, default=500.0, help="events/s of simulated traffic (default 500)")
    ap.add_argument("--seed", type=int, default=7, help="seeds the traffic and the moments of the faults")
    ap.add_argument("--together", action="store_true", help="all named scenarios in one run")
    ap.add_argument("--workdir", type=Path, default=None, help="default $PAYSYNC_HOME/chaos")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds a run may take to settle")
    ap.add_argument("--json", action="store_true", help="one JSON object per run on stdout")
    args = ap.parse_args(argv)
    try:
        names = expand(args.scenarios)
    except ValueError as exc:
        print(f"paysync chaos: {exc}", file=sys.stderr)
        return 2
    setup_logging("WARNING")
    runs = [names] if args.together or "all" in args.scenarios else [[n] for n in names]
    workdir = (args.workdir or state_dir() / "chaos").resolve()
    failed = 0
    for group in runs:
        cfg = RunConfig(events=args.events, rate=args.rate, seed=args.seed, workdir=workdir,
                        bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None, settle_timeout_s=args.timeout)
        say = (lambda s: None) if args.json else _print
        say(f"» chaos {'+'.join(group)}")
        result = run(plan(group, args.events, args.rate, args.seed), cfg, say)
        failed += not result.passed
        if args.json:
            _print(json.dumps({**asdict(result), "passed": result.passed}, default=str))
        else:
            _print(result.line())
    return 1 if failed else 0
