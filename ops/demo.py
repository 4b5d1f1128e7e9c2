"""`paysync demo`: the whole pipeline on local defaults, ending with the reconciliation report.

Starts a local Kafka broker, the Salesforce emulator, the Stripe simulator and every component
(webhook receiver, pollers, a stream worker, the sink), drives simulated Stripe traffic through real
signed webhooks — several currencies including JPY and KWD, Connect accounts, refunds, disputes,
invoices, payouts, with duplicated, reordered and dropped deliveries — shows live progress, then
reconciles Salesforce against the simulator's truth. Exit status 0 only when they match.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from paysync.paths import state_dir

from ops.pipeline import LATE_VISIBILITY_S, LocalPipeline, PipelineOptions, Quiet

# Story delays at 1/1000 of a real account's. Late list visibility needs no slower stories: a payout's `?payout=`
# list is never late (`emulators.stripe_simulator.api`: complete once reconciled, as Stripe documents), and a
# member's range-listed copy arriving after its payout's copy ranks below it in the streams (`bt_signature`).
STORY_SCALE = 0.001


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def progress_line(p: LocalPipeline, t0: float) -> str:
    """One line of live progress."""
    assert p.stripe is not None
    st = p.stripe.status()
    lags = p.lags()
    return (f"[{time.monotonic() - t0:6.1f}s] Stripe events {st.get('events_generated', 0):>7} · "
            f"webhooks delivered {st.get('deliveries', {}).get('succeeded', st.get('delivered', 0)) if isinstance(st.get('deliveries'), dict) else st.get('delivered', 0):>7} · "
            f"on Kafka {p.events_in():>7} · lag streams {lags['streams']:>6} sink {lags['sink']:>6} · "
            f"dead letters {p.dead_letters():>4}")


def settle(p: LocalPipeline, t0: float, timeout: float, quiet_for: float = 6.0, every: float = 2.0) -> bool:
    """Wait until the simulator is done and both stages have no lag for `quiet_for` seconds."""
    assert p.stripe is not None
    deadline = time.monotonic() + timeout
    quiet = Quiet(quiet_for)
    last_print = 0.0
    while time.monotonic() < deadline:
        st = p.stripe_status()
        lags = p.lags()
        if time.monotonic() - last_print >= every:
            _print(progress_line(p, t0))
            last_print = time.monotonic()
        if quiet.update(bool(st.get("done")) and lags["streams"] == 0 and lags["sink"] == 0):
            return True
        time.sleep(0.5)
    return False


def wait_horizon(p: LocalPipeline, t0: float, timeout: float, quiet_for: float = 6.0) -> bool:
    """With late list visibility, an entry the pollers' tail passed while it was invisible is listed by the first
    sweep once it is older than the visibility horizon: wait until that moment for the newest entry
    (`LocalPipeline.listed_by`), then settle again, unless the settle just ended was quiet since that moment."""
    due = p.listed_by()
    if due <= time.time() - quiet_for:
        return True
    _print(f"» late visibility: waiting {max(0.0, due - time.time()):.0f} s for the pollers' horizon to pass the "
           "last entry")
    while time.time() < due:
        time.sleep(min(2.0, max(0.0, due - time.time())))
        _print(progress_line(p, t0))
    return settle(p, t0, timeout)


def run_reconcile(p: LocalPipeline) -> dict[str, Any]:
    """Reconcile Salesforce (the emulator) with the simulator's truth."""
    from ops.reconcile.engine import reconcile
    from core.config import mapping_config

    assert p.stripe is not None
    return reconcile(p.stripe.truth(), p.salesforce_reader(), mapping_config())


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="paysync demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000, help="Stripe events to simulate (default 20000)")
    ap.add_argument("--rate", type=float, default=1000.0, help="events/s of simulated traffic (default 1000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--duplicate-rate", type=float, default=0.05)
    ap.add_argument("--drop-rate", type=float, default=0.02, help="share of webhooks never delivered (poller recovers)")
    ap.add_argument("--reorder-window", type=float, default=2.0, help="seconds over which deliveries are shuffled")
    ap.add_argument("--late-visibility", type=float, default=LATE_VISIBILITY_S, metavar="S",
                    help=f"list entries (events, balance transactions) visible 0-S s after their created, as a real "
                         f"account does (issue 15; default {LATE_VISIBILITY_S:g}, 0 = off); the demo then waits out "
                         f"the pollers' visibility horizon (S + a few seconds)")
    ap.add_argument("--workdir", type=Path, default=None, help="default $PAYSYNC_HOME/demo")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the pipeline to settle")
    ap.add_argument("--keep-running", action="store_true", help="leave everything up after the report (Ctrl-C stops)")
    ap.add_argument("--org-mode", choices=("default", "admins"), default="default",
                    help="the Salesforce emulator's org: 'admins' = as its admins leave it (a validation rule, an "
                         "admin-required field, private sharing, Orders disabled); the demo then passes when every "
                         "difference is a refusal recorded in Stripe_Sync_Error__c")
    return ap


def passed(summary: dict[str, Any], org_mode: str) -> bool:
    """Clean; or, in an org as its admins leave it, every difference a refusal recorded in Stripe_Sync_Error__c."""
    return bool(summary["clean"] or (org_mode == "admins" and summary["explained"]))


def main(argv: list[str]) -> int:
    """Run the demo; 0 when Salesforce matches Stripe."""
    args = _parser().parse_args(argv)

    import os

    options = PipelineOptions(
        workdir=(args.workdir or state_dir() / "demo").resolve(),
        bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        seed=args.seed,
        simulator_knobs={"duplicate_rate": args.duplicate_rate, "drop_rate": args.drop_rate,
                         "reorder_window": args.reorder_window, "tie_rate": 0.1},
        emulator_knobs={"org_mode": args.org_mode} if args.org_mode != "default" else {},
        visibility_max_delay_s=args.late_visibility,
        poll_interval_s=2.0 if args.late_visibility else 5.0,  # late entries are listed a poll after the horizon
    )
    t0 = time.monotonic()
    pipeline = LocalPipeline(options)
    try:
        pipeline.start(on_step=lambda s: _print(f"» {s}"))
        assert pipeline.stripe is not None
        _print(f"» driving {args.events} Stripe events at {args.rate:.0f}/s through signed webhooks "
               f"(duplicates {args.duplicate_rate:.0%}, dropped {args.drop_rate:.0%}, reordered within "
               f"{args.reorder_window:g} s)")
        pipeline.drive(args.events, args.rate, delay_scale=STORY_SCALE)
        settled = settle(pipeline, t0, args.timeout)
        if settled and args.late_visibility:
            settled = wait_horizon(pipeline, t0, args.timeout, quiet_for=6.0)
        if not settled:
            _print("» the pipeline did not settle in time; reconciling what is there")
        _print("» reconciling Salesforce against Stripe")
        report = run_reconcile(pipeline)
        from ops.reconcile.report import render_text

        _print("")
        _print(render_text({k: v for k, v in report.items() if not k.startswith("_")}))
        _print("")
        ports = pipeline.ports
        _print("metrics (Prometheus text format):")
        _print(f"  webhook receiver  http://127.0.0.1:{ports['webhook_metrics']}/metrics")
        _print(f"  pollers           http://127.0.0.1:{ports['poll_metrics']}/metrics")
        _print(f"  stream worker     http://127.0.0.1:{ports['stream0_metrics']}/metrics")
        _print(f"  sink              http://127.0.0.1:{ports['sink_metrics']}/metrics")
        _print(f"logs: {options.workdir / 'logs'}   ·   total {time.monotonic() - t0:.0f} s")
        if args.keep_running:
            _print("running; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
        return 0 if passed(report["summary"], args.org_mode) else 1
    except KeyboardInterrupt:
        return 130
    finally:
        pipeline.stop()
