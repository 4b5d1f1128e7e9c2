"""The chaos scenarios: what each one injects, as pipeline knobs (set at start) and timed actions (during traffic).

Several scenarios can share one run (`plan(["kill-sink", "poison"], …)`); `all` is every scenario at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ops.chaos.poison import KINDS as POISON_KINDS
from ops.pipeline import LATE_VISIBILITY_S
from paysync.settings import settings_env
from sinks.settings import SinkSettings
from streams.settings import StreamSettings

SCENARIOS: dict[str, str] = {
    "kill-receiver": "SIGKILL the webhook receiver at random moments; the supervisor restarts it",
    "kill-stream": "SIGKILL the stream worker at random moments; the supervisor restarts it",
    "kill-sink": "SIGKILL the Salesforce sink at random moments; the supervisor restarts it",
    "broker-restart": "stop the (private) Kafka broker for a few seconds under load, then start it again",
    "salesforce-faults": "Salesforce answers 503 and UNABLE_TO_LOCK_ROW to 20 % of calls each",
    "session-expiry": "Salesforce sessions expire every 3 seconds",
    "api-limit": "the daily API limit runs out during the traffic, and is reset a few seconds later",
    "redelivery": "every webhook delivered 1-3 times, shuffled, with same-second ties",
    "dropped-webhooks": "5 % of webhooks never delivered; the events poller must recover them",
    "stripe-429": "the Stripe API rate limit is low: the pollers get 429s and back off",
    "poison": "one malformed record per thousand events on stripe.events, stripe.balance_transactions and "
              "salesforce.upserts; each must reach the dead-letter topic with its origin",
}
KILL_TARGETS: dict[str, str] = {"kill-receiver": "webhook", "kill-stream": "stream0", "kill-sink": "sink"}


@dataclass(frozen=True)
class Action:
    """Something the runner does at `at` seconds after the traffic starts."""

    at: float
    kind: str  # kill | broker-outage | api-limit-outage | poison
    target: str = ""
    duration: float = 0.0


@dataclass
class Plan:
    """One run: its scenarios, the pipeline knobs, the generation parameters and the timed actions."""

    names: list[str]
    private_broker: bool
    simulator_knobs: dict[str, Any] = field(default_factory=dict)
    emulator_knobs: dict[str, Any] = field(default_factory=dict)
    stripe_rate_limit: float = 0.0
    visibility_max_delay_s: float = 0.0  # list entries 0-N s late (issue 15; the pollers' horizon follows it)
    extra_env: dict[str, str] = field(default_factory=dict)
    generate: dict[str, Any] = field(default_factory=dict)
    tee: bool = False
    actions: list[Action] = field(default_factory=list)


def expand(names: list[str]) -> list[str]:
    """Scenario names with `all` expanded, in the table's order; ValueError for unknown names."""
    wanted = set(SCENARIOS) if "all" in names else set(names)
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}, all")
    return [n for n in SCENARIOS if n in wanted]


def _slots(rng: random.Random, count: int, start: float, end: float) -> list[float]:
    """`count` seeded moments in [start, end], one in each equal slot (so kills of one target do not bunch)."""
    width = (end - start) / max(1, count)
    return [start + i * width + rng.uniform(0.1, 0.9) * width for i in range(count)]


def plan(names: list[str], events: int, rate: float, seed: int, window_s: float | None = None,
         late_visibility_s: float = LATE_VISIBILITY_S) -> Plan:
    """The run for scenario `names` at `events` events and `rate` events/s; faults happen in the traffic window.
    Every run lists entries up to `late_visibility_s` late (as a real account does; 0 = off)."""
    names = expand(names)
    rng = random.Random(f"chaos:{seed}:{','.join(names)}")
    window = window_s if window_s is not None else max(10.0, events / rate if rate else 10.0)
    p = Plan(names=names, private_broker="broker-restart" in names, visibility_max_delay_s=late_visibility_s)
    # Deliveries retried long enough to outlast a killed receiver or a stopped broker (0.5 s … 32 s: ~64 s).
    p.simulator_knobs = {"max_attempts": 8, "retry_base": 0.5, "reorder_window": 0, "duplicate_rate": 0.0}
    p.generate = {"delay_scale": 0.001}
    # Crash detection in seconds, not the default minute: a SIGKILLed consumer stays in its group until its session
    # times out, and its restarted successor gets no partitions before that (no static membership).
    p.extra_env = {**settings_env(StreamSettings, stream_session_timeout_s=15),
                   **settings_env(SinkSettings, sink_session_timeout_ms=10000)}
    for name in names:
        if name in KILL_TARGETS:
            count = max(2, round(window / 6))
            p.actions += [Action(t, "kill", KILL_TARGETS[name]) for t in _slots(rng, count, 0.0, window)]
        elif name == "broker-restart":
            p.actions.append(Action(rng.uniform(0.25, 0.5) * window, "broker-outage", duration=5.0))
        elif name == "salesforce-faults":
            p.emulator_knobs.update(error_503_rate=0.2, lock_rate=0.2)
        elif name == "session-expiry":
            p.emulator_knobs.update(session_ttl_s=3)
        elif name == "api-limit":
            p.extra_env.update(settings_env(SinkSettings, sink_pause_check_s=1))
            p.actions.append(Action(rng.uniform(0.15, 0.35) * window, "api-limit-outage", duration=8.0))
        elif name == "redelivery":
            p.tee = True
            p.simulator_knobs.update(reorder_window=50)
            p.generate.update(tie_rate=0.3)
        elif name == "dropped-webhooks":
            p.simulator_knobs.update(drop_rate=0.05)
        elif name == "stripe-429":
            p.stripe_rate_limit = 3.0
        elif name == "poison":
            count = max(len(POISON_KINDS), events // 1000)
            p.actions += [Action(t, "poison") for t in _slots(rng, count, 0.0, window)]
    p.actions.sort(key=lambda a: a.at)
    return p
