"""One chaos run: start the local pipeline with the plan's knobs, drive traffic while the timed faults fire, let it
settle, then check the invariants (re-checking for a bounded while: the pipeline is eventually consistent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from ops.chaos import invariants
from ops.chaos.poison import PoisonInjector
from ops.chaos.scenarios import Action, Plan
from ops.chaos.tee import WebhookTee
from ops.pipeline import LocalPipeline, PipelineOptions, Quiet

log = logging.getLogger("paysync.chaos")

# action kinds of other scenario families, by kind (ops.chaos.cluster registers its node faults here)
EXTRA_ACTIONS: dict[str, Callable[[LocalPipeline, Action, Counter[str]], None]] = {}


@dataclass
class RunConfig:
    """Size and limits of a run."""

    events: int = 20_000
    rate: float = 500.0
    seed: int = 7
    workdir: Path = Path("/tmp/paysync-chaos")
    bootstrap: str | None = None  # ignored when the plan needs a private broker
    settle_timeout_s: float = 600.0
    converge_s: float = 90.0  # after the lag is gone, how long the invariants may take to hold
    quiet_s: float = 6.0


@dataclass
class RunResult:
    """What a run did and found."""

    names: list[str]
    events: int
    faults: dict[str, Any] = field(default_factory=dict)
    settle_s: float = 0.0
    total_s: float = 0.0
    checks: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def line(self) -> str:
        """One line for the operator."""
        faults = ", ".join(f"{k}={v}" for k, v in self.faults.items()) or "none"
        verdict = "PASS" if self.passed else "FAIL: " + " | ".join(self.violations)
        return (f"{'+'.join(self.names)}: events {self.events} · faults {faults} · settle {self.settle_s:.1f} s · "
                f"total {self.total_s:.0f} s · {verdict}")


class _Injector:
    """Runs the plan's timed actions in order on a thread, counting what it injected."""

    def __init__(self, p: LocalPipeline, plan: Plan, poison: PoisonInjector) -> None:
        self.p = p
        self.plan = plan
        self.poison = poison
        self.counts: Counter[str] = Counter()
        self.outage_s: dict[str, float] = defaultdict(float)
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="chaos-injector", daemon=True)
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        for action in self.plan.actions:
            wait = self._t0 + action.at - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # a schedule, not a synchronisation: faults fire at seeded moments
            try:
                self._do(action)
            except Exception as exc:  # noqa: BLE001 - reported as a violation of the run, never swallowed
                log.exception("chaos action failed", extra={"action": action.kind})
                self.errors.append(f"{action.kind} {action.target}: {type(exc).__name__}: {exc}")

    def _do(self, action: Action) -> None:
        sup = self.p.supervisor
        assert sup is not None
        if action.kind == "kill":
            if sup.kill(action.target) is not None:
                self.counts[f"kill-{action.target}"] += 1
        elif action.kind == "broker-outage":
            started = time.monotonic()
            self.p.stop_broker()
            time.sleep(action.duration)
            self.p.start_broker()
            self.counts["broker-outages"] += 1
            self.outage_s["broker"] += time.monotonic() - started
        elif action.kind == "api-limit-outage":
            used = int(self.p.sf.stats().get("api_used", 0))
            self.p.sf.set_faults(daily_limit=used + 10)
            started = time.monotonic()
            time.sleep(action.duration)
            self.p.sf.set_faults(daily_limit=100_000)
            self.p.sf.admin("POST", "/_emulator/limits/reset")
            self.counts["api-limit-outages"] += 1
            self.outage_s["api-limit"] += time.monotonic() - started
        elif action.kind == "poison":
            record = self.poison.inject()
            self.counts["poison"] += 1
            log.info("poison injected", extra={"kind": record.kind, "origin": list(record.origin)})
        elif action.kind in EXTRA_ACTIONS:
            EXTRA_ACTIONS[action.kind](self.p, action, self.counts)


def _lags(p: LocalPipeline) -> dict[str, int] | None:
    """The consumer lags, or None while the broker cannot answer (e.g. just after its restart)."""
    try:
        return p.lags()
    except KafkaException as exc:
        log.warning("lag probe failed: not settled yet", extra={"error": str(exc)})
        return None


def _settled(p: LocalPipeline, tee: WebhookTee | None) -> bool:
    assert p.stripe is not None
    lags = _lags(p)
    return bool(p.stripe_status().get("done")) and lags is not None and lags["streams"] == 0 and (
        lags["sink"] == 0) and (tee is None or tee.pending() == 0)


def _wait_quiet(p: LocalPipeline, tee: WebhookTee | None, quiet_s: float, deadline: float,
                say: Callable[[str], None] = lambda s: None) -> bool:
    quiet = Quiet(quiet_s)
    last_say = time.monotonic()
    while time.monotonic() < deadline:
        if time.monotonic() - last_say >= 10:
            last_say = time.monotonic()
            assert p.stripe is not None
            st = p.stripe.status()
            say(f"  » settling: simulator done={st.get('done')} pending deliveries="
                f"{st.get('deliveries', {}).get('pending')} lags={_lags(p)}")
        if quiet.update(_settled(p, tee)):
            return True
        time.sleep(0.5)
    return False


def _wait_listed(p: LocalPipeline, tee: WebhookTee | None, quiet_s: float, deadline: float,
                 say: Callable[[str], None] = lambda s: None) -> bool:
    """With late lists, until the pollers' horizon has passed the newest entry (`listed_by`), then quiet again."""
    due = min(p.listed_by(), deadline)
    if due > time.time():
        say(f"  » late visibility: waiting {due - time.time():.0f} s for the pollers' horizon")
        time.sleep(due - time.time())  # a moment computed from the pollers' settings, not a guess
    return _wait_quiet(p, tee, quiet_s, deadline, say)


def _calm(p: LocalPipeline) -> None:
    """Faults off before the check: the invariant is about the data, and the check's own queries must not fail."""
    p.sf.set_faults(error_503_rate=0.0, lock_rate=0.0, session_ttl_s=7200, daily_limit=100_000)
    p.sf.admin("POST", "/_emulator/limits/reset")


def run(plan: Plan, cfg: RunConfig, say: Callable[[str], None] = lambda s: None) -> RunResult:
    """Run `plan` and return its result (violations empty = passed)."""
    t0 = time.monotonic()
    result = RunResult(plan.names, cfg.events)
    options = PipelineOptions(
        workdir=cfg.workdir, bootstrap=None if plan.private_broker else cfg.bootstrap, seed=cfg.seed,
        simulator_knobs=plan.simulator_knobs, emulator_knobs=plan.emulator_knobs, poll_interval_s=2.0,
        stripe_rate_limit=plan.stripe_rate_limit, extra_env=plan.extra_env,
        visibility_max_delay_s=plan.visibility_max_delay_s,
    )
    p = LocalPipeline(options)
    tee: WebhookTee | None = None
    try:
        p.start(on_step=lambda s: say(f"  » {s}"))
        assert p.stripe is not None and p.supervisor is not None
        if plan.tee:
            tee = WebhookTee(f"http://127.0.0.1:{p.ports['webhook']}/webhooks/stripe", cfg.seed).start()
            p.stripe.configure(webhook_url=tee.url)
        poison = PoisonInjector(p.bootstrap, p.prefix)
        injector = _Injector(p, plan, poison)
        say(f"  » driving {cfg.events} events at {cfg.rate:g}/s with {len(plan.actions)} timed fault(s)")
        injector.start()
        p.drive(cfg.events, cfg.rate, **plan.generate)
        deadline = time.monotonic() + cfg.settle_timeout_s
        injector.join(max(1.0, deadline - time.monotonic()))
        traffic_done = time.monotonic()
        quiet = _wait_quiet(p, tee, cfg.quiet_s, deadline, say)
        if quiet and plan.visibility_max_delay_s:
            quiet = _wait_listed(p, tee, cfg.quiet_s, deadline, say)
        _calm(p)
        checked: dict[str, Any] = {}
        converge_deadline = time.monotonic() + cfg.converge_s
        while True:
            result.checks += 1
            checked = invariants.check(p, poison.injected)
            if not checked["violations"] or time.monotonic() >= converge_deadline:
                break
            say(f"  » not yet consistent ({len(checked['violations'])} violation(s)); checking again")
            _wait_quiet(p, tee, 3.0, converge_deadline)
        result.settle_s = time.monotonic() - traffic_done
        result.violations = list(checked["violations"]) + injector.errors
        if not quiet:
            result.violations.append(f"the pipeline did not settle within {cfg.settle_timeout_s:.0f} s")
        result.details = {k: v for k, v in checked.items() if k != "violations"}
        result.faults = _faults(p, plan, injector, tee)
    finally:
        if tee is not None:
            tee.stop()
        p.stop()
    result.total_s = time.monotonic() - t0
    return result


def _faults(p: LocalPipeline, plan: Plan, injector: _Injector, tee: WebhookTee | None) -> dict[str, Any]:
    """What was actually injected, from the injector's counts and the emulators' own counters."""
    assert p.stripe is not None and p.supervisor is not None
    faults: dict[str, Any] = dict(injector.counts)
    faults.update({f"{k}-outage-s": round(v, 1) for k, v in injector.outage_s.items()})
    restarts = {c.name: c.restarts for c in p.supervisor.components.values() if c.restarts}
    if restarts:
        faults["restarts"] = restarts
    deliveries = p.stripe.status().get("deliveries", {})
    for key in ("dropped", "failed_attempts", "retries", "failed"):
        if deliveries.get(key):
            faults[f"webhook-{key.replace('_', '-')}"] = deliveries[key]
    if tee is not None:
        faults["webhook-extra-copies"] = tee.extra_sent
        faults["webhook-copies"] = dict(sorted(tee.copies_histogram.items()))
    limited = int(p.stripe.stats().get("rate_limited", 0))
    if limited:
        faults["stripe-429s"] = limited
    for knob in ("error_503_rate", "lock_rate", "session_ttl_s"):
        if knob in plan.emulator_knobs:
            faults[f"sf-{knob.replace('_', '-')}"] = plan.emulator_knobs[knob]
    if plan.emulator_knobs:
        faults["sf-auth-calls"] = int(p.sf.stats().get("calls", {}).get("auth", 0))
    return faults
