"""Late visibility (issue 15, "Done when": "With entries up to 10 minutes late in the simulator, a run reconciles
CLEAN with every balance transaction present"), on a simulated clock (`late_clock`) so that the 10 minutes pass in
seconds: the simulator lists every event and balance transaction a random 0–600 s after its `created`
(`Visibility`), webhooks still deliver at once (some dropped: those events come only from the pollers), and the
pollers run with their production settings (`PAYSYNC_POLL_VISIBILITY_HORIZON_S` 600, sweep every 300 s).

Balance transactions have no second source but their automatic payout's `?payout=` list: one in no such list that
the tail passed while it was still invisible is listed only by a sweep behind the horizon. The run is judged once simulated time is past the last entry's `created` + the horizon
+ a sweep interval + a poll (the moment every entry must have been listed), never by waiting on a wall-clock guess.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from late_clock import CountingVisibility, InProcessSimulator, PollerLoop, SimulatedClock, start_in_process

import ops.pipeline as pipeline_module
from ops.demo import run_reconcile, settle
from ops.pipeline import LocalPipeline, PipelineOptions
from paysync.settings import settings_env
from producers.pollers.settings import PollerSettings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAX_DELAY_S = 600.0  # entries listed up to 10 minutes late
SPEED = 60.0  # simulated seconds per wall second once the account is quiet
# ~40 minutes of simulated traffic (600 stories, one every 2 s on average) at 30 events per wall second, the stories'
# own delays as in a real account (settlement 30 min, payouts hourly, disputes over hours: `delay_scale` 1, so a
# payout's members are long visible when it is reconciled); half the payouts manual: a transaction they take is in
# no `?payout=` list, so the range listing is its only source (as for one no payout took yet).
TRAFFIC: dict[str, Any] = {"events": 600, "rate": 30, "mean_gap": 2.0, "delay_scale": 1.0,
                           "connected_accounts": 2, "manual_payout_rate": 0.5}


@pytest.fixture(scope="module")
def late(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LocalPipeline, InProcessSimulator, SimulatedClock, PollerLoop]]:
    sim_clock = SimulatedClock(start=int(time.time()) - 86400, speed=SPEED)  # a day back: never in the future
    made: list[InProcessSimulator] = []

    def simulator(seed: int, webhook_url: str, webhook_secrets: list[str], clock: str = "", rate_limit: float = 0.0,
                  **knobs: Any) -> InProcessSimulator:
        """`start_simulator`'s stand-in: the scenario clock is `sim_clock`, not the wall (`clock` ignored)."""
        made.append(start_in_process(sim_clock, MAX_DELAY_S, seed, webhook_url, webhook_secrets, knobs))
        return made[0]

    p = LocalPipeline(PipelineOptions(
        workdir=tmp_path_factory.mktemp("late") / "pipeline", bootstrap=kafka_bootstrap, partitions=3, seed=29,
        simulator_knobs={"duplicate_rate": 0.05, "drop_rate": 0.05, "reorder_window": 1.0}))
    loop: PollerLoop | None = None
    try:
        with pytest.MonkeyPatch.context() as mp:  # the pipeline's simulator: this process's, on `clock`
            mp.setattr(pipeline_module, "start_simulator", simulator)
            p.start()
        sim = made[0]
        sim.generate(**TRAFFIC)
        accounts = _connected_accounts(sim, TRAFFIC["connected_accounts"])
        env = settings_env(PollerSettings, stripe_accounts=",".join(accounts),
                           poll_discover_accounts=False)  # the simulator has no /v1/accounts
        loop = PollerLoop({**p.env, **env}, sim_clock).start()
        yield p, sim, sim_clock, loop
    finally:
        if loop is not None:
            loop.stop()
        p.stop()


def _connected_accounts(sim: InProcessSimulator, wanted: int, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        accounts = list(sim.status().get("connected_accounts") or [])
        if len(accounts) >= wanted:
            return accounts
        time.sleep(0.1)
    raise AssertionError("the simulator's connected accounts did not appear")


def _until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


def test_ten_minutes_late_reconciles_clean_with_every_balance_transaction(
        late: tuple[LocalPipeline, InProcessSimulator, SimulatedClock, PollerLoop]) -> None:
    p, sim, clock, loop = late
    _until(lambda: not sim.status()["running"], 180, "the scenario to be generated")
    clock.run_free()
    truth = sim.truth()
    txns = {line["object"]["id"]: line["object"] for line in truth
            if line["kind"] == "object" and line["type"] == "balance_transaction"}
    last = max(int(line["object"]["created"]) for line in truth if line["kind"] == "object")
    horizon, sweep = loop.settings.poll_visibility_horizon_s, loop.settings.poll_sweep_every_s
    due = last + horizon + sweep + 60  # every entry visible and behind the horizon, and one more sweep run
    _until(lambda: clock.now() >= due, 3 * (due - clock.now()) / SPEED + 30, "simulated time to pass the horizon")
    assert settle(p, time.monotonic(), timeout=90, quiet_for=3.0), "the pipeline did not settle"

    visibility = sim.sim.api.visibility
    assert isinstance(visibility, CountingVisibility)
    members = {m["id"] for line in truth if line["kind"] == "payout" and line["members"] for m in line["members"]}
    late_txns = [t for t in txns if t not in members and visibility.delay_of(t) > sweep]
    assert visibility.hidden > 0 and len(late_txns) >= 5, (
        f"{len(late_txns)} transactions listed only by the range listing and over {sweep:.0f} s late: too few")
    assert not loop.errors, loop.errors[:5]
    rows = p.salesforce_reader().query("SELECT Stripe_Balance_Transaction_Id__c FROM Stripe_Balance_Transaction__c")
    missing = set(txns) - {r["Stripe_Balance_Transaction_Id__c"] for r in rows}
    assert not missing, (f"{len(missing)} of {len(txns)} balance transactions never reached Salesforce "
                         f"(delays {sorted(round(visibility.delay_of(t)) for t in missing)[:10]} s)")
    report = run_reconcile(p)
    assert report["summary"]["clean"], {k: v for k, v in report["summary"].items() if v}
