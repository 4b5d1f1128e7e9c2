"""A pipeline on a simulated clock, for late visibility (issue 15): entries listed up to 10 minutes after their
`created`, and a run that still reconciles clean, in well under a minute of wall time.

The Stripe simulator runs in this process (its `Simulator` and app, served by uvicorn in a thread) on the `fixed`
scenario clock, so `created` is scenario time; `SimulatedClock` is "now" for the simulator's list visibility
(`Visibility(clock=…)`) and for the pollers, which run here too, through their `poll_once(now=…)` and
`PollerFleet(clock=…)` parameters. While the scenario is generated, now is the newest `created` written (time
passes as the account works); once generation is over, now runs on at `speed` simulated seconds per second, so the
10 minutes after the last entry pass in seconds. Webhook receiver, streams and sink are the usual subprocesses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from emulators.stripe_simulator.params import ScenarioParams
from emulators.stripe_simulator.records import EventRecord, TxnRecord
from emulators.stripe_simulator.server import Simulator, build_app
from emulators.stripe_simulator.store import DELIVERY_NONE, Store
from emulators.stripe_simulator.truth import truth_lines
from emulators.stripe_simulator.visibility import Visibility
from emulators.stripe_simulator.webhooks import DeliveryKnobs
from paysync.net import free_port


class SimulatedClock:
    """`now()`: the newest `created` written so far, or — after `run_free()` — that plus `speed` × wall seconds."""

    def __init__(self, start: float, speed: float) -> None:
        self.speed = speed
        self._base, self._since = start, time.monotonic()
        self._free = False
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            if not self._free:
                return self._base
            return self._base + self.speed * (time.monotonic() - self._since)

    def reach(self, created: float) -> None:
        """An entry stamped `created` exists: now is at least that."""
        with self._lock:
            current = self._base + (self.speed * (time.monotonic() - self._since) if self._free else 0.0)
            if created > current:
                self._base, self._since = created, time.monotonic()

    def run_free(self) -> None:
        """From now on time passes by itself (the account is quiet)."""
        with self._lock:
            if not self._free:
                self._free, self._since = True, time.monotonic()


class ClockedStore(Store):
    """The simulator's store; every batch written moves the clock to its newest `created`."""

    def __init__(self, clock: SimulatedClock) -> None:
        super().__init__(None)
        self.clock = clock

    def write(self, records: Iterable[EventRecord | TxnRecord], delivery: int = DELIVERY_NONE) -> None:
        batch = list(records)
        super().write(batch, delivery)
        if batch:
            self.clock.reach(max(r.created for r in batch))


class CountingVisibility(Visibility):
    """`Visibility` that counts the listed entries it hid (so a test can show that entries *were* late)."""

    hidden = 0

    def filter(self, bodies: list[str]) -> list[str]:
        shown = super().filter(bodies)
        self.hidden += len(bodies) - len(shown)
        return shown


@dataclass
class InProcessSimulator:
    """What `LocalPipeline` uses of a `SimulatorHandle`, over a `Simulator` served in this process."""

    sim: Simulator
    base_url: str
    api_key: str
    webhook_secrets: list[str]
    server: Any
    thread: threading.Thread

    def generate(self, wait: bool = False, timeout: float = 300.0, **params: Any) -> dict[str, Any]:
        self.sim.start_run(params)
        return self.status()

    def status(self) -> dict[str, Any]:
        return self.sim.status()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        self.sim.configure(knobs)
        return {}

    def stats(self) -> dict[str, int]:
        return dict(self.sim.api.counts)

    def truth(self) -> list[dict[str, Any]]:
        import json

        return [json.loads(line) for line in truth_lines(self.sim.store)]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sim.stop()


def start_in_process(clock: SimulatedClock, max_delay_s: float, seed: int, webhook_url: str,
                     webhook_secrets: list[str], knobs: dict[str, Any]) -> InProcessSimulator:
    """The simulator on `clock` with entries listed 0–`max_delay_s` late, serving on a free port."""
    import uvicorn

    params = ScenarioParams(seed=seed, start_time=int(clock.now()), clock="fixed")
    delivery = DeliveryKnobs(webhook_url=webhook_url, webhook_secrets=webhook_secrets, seed=seed,
                             **{k: v for k, v in knobs.items() if k in DeliveryKnobs.__dataclass_fields__})
    sim = Simulator(ClockedStore(clock), "sk_test_late_clock", delivery, 0.0, params)
    sim.api.visibility = CountingVisibility(max_delay_s, seed=seed, clock=clock.now)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(sim), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True, name="stripe-simulator")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the in-process simulator did not start")
        time.sleep(0.05)
    return InProcessSimulator(sim, f"http://127.0.0.1:{port}", sim.api.api_key, webhook_secrets, server, thread)


class PollerLoop:
    """`paysync poll`'s pollers (`producers.pollers.cli.main`'s wiring) in a thread, each poll at `clock.now()`.

    Settings come from `env` (the pipeline's component environment), read once here as the CLI does."""

    def __init__(self, env: dict[str, str], clock: SimulatedClock, pause_s: float = 0.2) -> None:
        import pytest

        from producers.pollers.accounts import AccountDirectory
        from producers.pollers.balance_poller import BalanceTransactionsPoller
        from producers.pollers.events_poller import EventsPoller
        from producers.pollers.fleet import PollerFleet
        from producers.pollers.listing import HorizonConfig
        from producers.pollers.settings import PollerSettings
        from producers.pollers.wiring import open_stripe_io

        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                if name.startswith("PAYSYNC_") or name.startswith("KAFKA_"):
                    mp.setenv(name, value)
            settings = PollerSettings()
        self.settings = settings
        self.io = io = open_stripe_io(settings, False)
        horizon = HorizonConfig(horizon_s=settings.poll_visibility_horizon_s, deep_every_s=settings.poll_sweep_every_s,
                                initial_lookback_s=settings.poll_initial_lookback_s,
                                max_pages_per_poll=settings.poll_max_pages_per_turn)
        common: dict[str, Any] = {"topic_prefix": settings.topics.prefix, "horizon": horizon,
                                  "publish_timeout_s": settings.poll_publish_timeout_s}

        def pollers_of(account: str | None, directory: AccountDirectory) -> list[Any]:
            observers = (directory.observe,) if account is None else ()
            return [EventsPoller(io.api, io.publisher, io.cursors, account=account, observers=observers, **common),
                    BalanceTransactionsPoller(io.api, io.publisher, io.cursors, account=account,
                                              payout_lookback_days=settings.payout_lookback_days, **common)]

        directory = AccountDirectory(io.api, settings.stripe_accounts, settings.poll_discover_accounts,
                                     settings.poll_accounts_every_s)
        self.fleet = PollerFleet(directory, pollers_of, clock=clock.now)
        self.clock, self.pause_s = clock, pause_s
        self.rounds = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pollers")

    def start(self) -> "PollerLoop":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for poller in self.fleet.current():
                try:
                    poller.poll_once(now=self.clock.now())
                except Exception as exc:  # noqa: BLE001 - surfaced through `errors` (the CLI logs and goes on)
                    self.errors.append(f"{poller.name}: {type(exc).__name__}: {exc}")
            self.rounds += 1
            self._stop.wait(self.pause_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.io.publisher.close()


@dataclass
class LatePipeline:
    """A `LocalPipeline` whose simulator and pollers run on `clock`."""

    p: Any  # ops.pipeline.LocalPipeline
    sim: InProcessSimulator
    clock: SimulatedClock
    loop: PollerLoop


@contextmanager
def late_pipeline(options: Any, max_delay_s: float, speed: float,
                  traffic: dict[str, Any]) -> Iterator[LatePipeline]:
    """`LocalPipeline(options)` with this process's simulator on a simulated clock (a day back, so `created` is
    never in the future) listing entries 0–`max_delay_s` late, `traffic` generated, and the pollers polling."""
    import pytest

    import ops.pipeline as pipeline_module
    from paysync.settings import settings_env
    from producers.pollers.settings import PollerSettings

    sim_clock = SimulatedClock(start=int(time.time()) - 86400, speed=speed)
    made: list[InProcessSimulator] = []

    def simulator(seed: int, webhook_url: str, webhook_secrets: list[str], clock: str = "", rate_limit: float = 0.0,
                  **knobs: Any) -> InProcessSimulator:
        """`start_simulator`'s stand-in: the scenario runs on `sim_clock` (`clock` ignored)."""
        made.append(start_in_process(sim_clock, max_delay_s, seed, webhook_url, webhook_secrets, knobs))
        return made[0]

    p = pipeline_module.LocalPipeline(options)
    loop: PollerLoop | None = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(pipeline_module, "start_simulator", simulator)
            p.start()
        sim = made[0]
        sim.generate(**traffic)
        accounts = _connected_accounts(sim, int(traffic.get("connected_accounts", 3)))
        env = settings_env(PollerSettings, stripe_accounts=",".join(accounts),
                           poll_discover_accounts=False)  # the simulator has no /v1/accounts
        loop = PollerLoop({**p.env, **env}, sim_clock).start()
        yield LatePipeline(p, sim, sim_clock, loop)
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


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


def run_out(late: LatePipeline, settle_timeout: float = 90.0) -> list[dict[str, Any]]:
    """Once the scenario is generated, let simulated time run until every entry has been visible and behind the
    pollers' horizon for a sweep interval and a minute (the moment each must have been listed), let the pipeline
    settle, and return the simulator's truth."""
    from ops.demo import settle

    _until(lambda: not late.sim.status()["running"], 180, "the scenario to be generated")
    late.clock.run_free()
    truth = late.sim.truth()
    last = max(int(line["object"]["created"]) for line in truth if line["kind"] == "object")
    settings = late.loop.settings
    due = last + settings.poll_visibility_horizon_s + settings.poll_sweep_every_s + 60
    _until(lambda: late.clock.now() >= due, 3 * (due - late.clock.now()) / late.clock.speed + 30,
           "simulated time to pass the horizon")
    assert settle(late.p, time.monotonic(), timeout=settle_timeout, quiet_for=3.0), "the pipeline did not settle"
    return truth
