"""`paysync chaos SCENARIO…`: drive simulated Stripe traffic through the whole local pipeline while injecting
faults, let it settle, and check that Salesforce equals Stripe (reconcile CLEAN, no duplicate, every payout
Reconciled) and that every poison record reached the dead-letter topic with its origin.

On one broker: kill-receiver, kill-stream, kill-sink, broker-restart, salesforce-faults, session-expiry, api-limit,
redelivery, dropped-webhooks, stripe-429, poison, and `all` (every one at once). A run uses
`KAFKA_BOOTSTRAP_SERVERS` when set, except broker-restart, which needs a broker of its own.

On a private 3-node KRaft cluster (issue 18): cluster-kill-leader, cluster-node-down, cluster-rolling-restart, and
`cluster-all` (the three at once). One cluster is started per invocation (data in WORKDIR/cluster), after the
one-broker runs; a cluster run also requires every webhook the receiver acknowledged to be on stripe.events, and
prints a line of figures: the longest window of non-2xx answers, settle time, events, nodes killed, catch-up times.

Each named scenario runs alone on a fresh pipeline unless `--together` puts them in one run (the two families
cannot share a run). Exit status: 0 when every run passed, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from paysync.logs import setup_logging
from paysync.paths import state_dir

from ops.chaos.cluster import CLUSTER_SCENARIOS, ClusterRun, cluster_plan, cluster_session, figures_line
from ops.chaos.runner import RunConfig, RunResult, run
from ops.chaos.scenarios import SCENARIOS, Plan, expand, plan

__all__ = ["CLUSTER_SCENARIOS", "RunConfig", "RunResult", "Runners", "SCENARIOS", "main", "plan", "run"]

LOCAL_RATE = 500.0
# three brokers beside the pipeline on one machine; 20,000 events at 60/s: a 333 s window holds the three node faults
CLUSTER_RATE = 60.0
Say = Callable[[str], None]
NAMES = (*SCENARIOS, "all", *CLUSTER_SCENARIOS, "cluster-all")  # what `paysync chaos` accepts


@dataclass(frozen=True)
class Runners:
    """What `main` runs plans with: `local(plan, cfg, say)` on one broker, and `cluster(data_dir, catch_up_s)`, a
    context manager around a private 3-node cluster yielding such a function for it. Tests inject fakes."""

    local: Callable[[Plan, RunConfig, Say], RunResult] = run
    cluster: Callable[[Path, float], AbstractContextManager[ClusterRun]] = cluster_session


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="paysync chaos", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="+", metavar="SCENARIO", help=", ".join(NAMES))
    ap.add_argument("--events", type=int, default=20_000, help="Stripe events per run (default 20000)")
    ap.add_argument("--rate", type=float, default=None,
                    help=f"events/s of simulated traffic (default {LOCAL_RATE:g}; {CLUSTER_RATE:g} on the cluster)")
    ap.add_argument("--seed", type=int, default=7, help="seeds the traffic and the moments of the faults")
    ap.add_argument("--together", action="store_true", help="all named scenarios in one run")
    ap.add_argument("--workdir", type=Path, default=None, help="default $PAYSYNC_HOME/chaos")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds a run may take to settle")
    ap.add_argument("--json", action="store_true", help="one JSON object per run on stdout")
    cluster = ap.add_argument_group("cluster scenarios")
    cluster.add_argument("--node-down-s", type=float, default=120.0,
                         help="how long cluster-node-down keeps its node stopped (default 120)")
    cluster.add_argument("--kill-back-s", type=float, default=5.0,
                         help="how long cluster-kill-leader's node stays dead before it is started again (default 5)")
    cluster.add_argument("--catch-up-s", type=float, default=90.0,
                         help="seconds a restarted node may take until every ISR is full again (default 90)")
    return ap


def runs_for(requested: list[str], together: bool) -> list[tuple[list[str], bool]]:
    """The runs `paysync chaos` makes for the `requested` names: (scenarios, on the cluster?), one-broker runs first,
    each scenario alone unless `together` (or `all` / `cluster-all`) joins its family. ValueError for unknown names
    and for `together` across both families."""
    unknown = sorted(set(requested) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(NAMES)}")
    wanted = [n for n in requested if n in CLUSTER_SCENARIOS or n == "cluster-all"]
    on_cluster = [n for n in CLUSTER_SCENARIOS if n in wanted or "cluster-all" in wanted]
    local_names = [n for n in requested if n not in wanted]
    local = expand(local_names) if local_names else []
    if together and local and on_cluster:
        raise ValueError("--together cannot join cluster scenarios with one-broker ones: they need different brokers")
    runs: list[tuple[list[str], bool]] = []
    if local:
        runs += [(local, False)] if together or "all" in local_names else [([n], False) for n in local]
    if on_cluster:
        runs += [(on_cluster, True)] if together or "cluster-all" in wanted else [([n], True) for n in on_cluster]
    return runs


def main(argv: list[str], runners: Runners | None = None) -> int:
    """Run the scenarios; 0 when every run kept the invariants."""
    args = _parser().parse_args(argv)
    try:
        runs = runs_for(args.scenarios, args.together)
    except ValueError as exc:
        print(f"paysync chaos: {exc}", file=sys.stderr)
        return 2
    runners = runners or Runners()
    setup_logging("WARNING")
    workdir = (args.workdir or state_dir() / "chaos").resolve()
    say: Say = (lambda s: None) if args.json else _print
    failed = 0
    with ExitStack() as stack:
        on_cluster: ClusterRun | None = None
        for names, cluster in runs:
            rate = args.rate if args.rate is not None else (CLUSTER_RATE if cluster else LOCAL_RATE)
            cfg = RunConfig(events=args.events, rate=rate, seed=args.seed, workdir=workdir,
                            settle_timeout_s=args.timeout, bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None)
            say(f"» chaos {'+'.join(names)}")
            if not cluster:
                result = runners.local(plan(names, args.events, rate, args.seed), cfg, say)
            else:
                if on_cluster is None:  # after every one-broker run: each of those starts by emptying the workdir
                    say(f"  » starting a private 3-node cluster in {workdir / 'cluster' / 'kafka'}")
                    on_cluster = stack.enter_context(runners.cluster(workdir / "cluster" / "kafka", args.catch_up_s))
                cfg.workdir, cfg.bootstrap = workdir / "cluster" / "run", None
                result = on_cluster(cluster_plan(names, args.events, rate, args.seed, node_down_s=args.node_down_s,
                                                 kill_back_s=args.kill_back_s), cfg, say)
            failed += not result.passed
            _report(result, cluster, args.json)
    return 1 if failed else 0


def _report(result: RunResult, cluster: bool, as_json: bool) -> None:
    """The run's verdict line (and a cluster run's figures), or one JSON object."""
    if as_json:
        _print(json.dumps({**asdict(result), "passed": result.passed}, default=str))
        return
    _print(result.line())
    if cluster:
        _print(figures_line(result))
