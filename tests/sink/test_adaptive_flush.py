"""Issue 16, "latency that adapts": the sink writes at once when no write is in flight and gathers while one is.

The flush decision and the batcher's readiness, pure; then the sink on the dev broker against the Salesforce emulator:
a lone record lands long before the max age, and a burst that arrives while a write is held lands in few calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from paysync.settings import settings_env
from sinks.batcher import Batcher
from sinks.client import Budget, SalesforceClient
from sinks.flush_policy import DAY_S, CallPace, Decision, Readiness, Step, decide
from sinks.metrics import SinkMetrics
from sinks.records import Origin, PendingRecord
from sinks.settings import SalesforceSettings, SinkSettings
from sinks.sink import Sink
from tests.sink.conftest import make_upsert, wait_for

NEW = Readiness(ready=3, fresh=3, full=False, aged=False)
RETRIES_ONLY = Readiness(ready=3, fresh=0, full=False, aged=False)


def step(r: Readiness, adaptive: bool = True, in_flight: bool = False, drained: bool = True,
         paused: bool = False) -> Decision:
    return decide(r, adaptive=adaptive, in_flight=in_flight, drained=drained, paused=paused)


def test_new_records_are_written_at_once_when_nothing_is_in_flight_and_nothing_more_is_ready() -> None:
    assert step(NEW) == Decision(Step.FLUSH, "idle")
    assert step(NEW, drained=False) == Decision(Step.GATHER)  # the consumer has more ready: take it first


def test_records_wait_while_a_write_is_in_flight_or_when_not_adaptive() -> None:
    assert step(NEW, in_flight=True) == Decision(Step.WAIT)
    assert step(NEW, adaptive=False) == Decision(Step.WAIT)


def test_the_size_and_age_bounds_hold_in_every_mode_and_a_budget_pause_holds_everything() -> None:
    full = Readiness(ready=10, fresh=10, full=True, aged=False)
    aged = Readiness(ready=1, fresh=0, full=False, aged=True)
    for adaptive in (True, False):
        for in_flight in (True, False):
            assert step(full, adaptive, in_flight, drained=False) == Decision(Step.FLUSH, "full")
            assert step(aged, adaptive, in_flight, drained=False) == Decision(Step.FLUSH, "age")
    assert step(full, paused=True) == Decision(Step.WAIT)
    assert step(Readiness(0, 0, False, False)) == Decision(Step.WAIT)


def test_retries_alone_never_force_an_early_write() -> None:
    assert step(RETRIES_ONLY) == Decision(Step.WAIT)


def test_early_writes_keep_to_the_daily_budget_pace_after_a_burst_allowance() -> None:
    pace = CallPace(share=1.0, burst_s=60.0)
    limit = int(DAY_S)  # one call per second: the bucket holds 60 calls
    assert pace.allows(0.0, limit)
    pace.spent(59, 0.0, limit)
    assert pace.allows(0.0, limit)
    pace.spent(5, 0.0, limit)  # 64 calls in a moment: 4 over the allowance
    assert not pace.allows(3.9, limit)
    assert pace.allows(4.1, limit)
    assert pace.allows(5.0, 0)  # the limit is unknown: no pacing
    pace.spent(10_000, 5.0, 0)
    assert pace.allows(5.0, 0)


def test_the_default_allowance_carries_a_five_minute_peak_and_stays_under_one_percent_of_the_day() -> None:
    """A peak at three calls a second (a batch every 0.7 s at 100 events/s) writes early for five minutes on a
    100,000-call org; what it spends ahead of the pace is under 1 % of the day, and then the pace holds."""
    limit = 100_000
    settings = SinkSettings()
    pace = CallPace(settings.sink_budget_share, settings.sink_pace_burst_s)
    spent, now = 0, 0.0
    while now < 300.0:
        assert pace.allows(now, limit), now
        pace.spent(1, now, limit)
        spent += 1
        now += 1 / 3
    ahead = spent - 300.0 * limit * settings.sink_budget_share / DAY_S
    assert ahead < 0.01 * limit
    while pace.allows(now, limit):  # the peak goes on: the allowance runs out…
        pace.spent(1, now, limit)
        now += 1 / 3
    later = now + 60.0
    calls = 0
    while now < later:  # …and from then on early writes keep to the day's pace
        if pace.allows(now, limit):
            pace.spent(1, now, limit)
            calls += 1
        now += 1 / 3
    assert calls <= 60.0 * limit * settings.sink_budget_share / DAY_S + 1


class _BudgetOnly:
    """Stands in for `SalesforceClient` where the sink only reads its budget header (no call is made)."""

    def __init__(self, max_calls: int) -> None:
        self.budget = Budget(0, max_calls)


@pytest.mark.parametrize("burst_s", [30, 600])
def test_the_sink_s_early_writes_stop_after_the_allowance_its_setting_gives(monkeypatch: pytest.MonkeyPatch,
                                                                         burst_s: int) -> None:
    """`PAYSYNC_SINK_PACE_BURST_S` reaches the sink: the calls its flushes cost (read from the budget header) use
    up `burst_s` seconds of the daily pace, and then early writes wait for the pace."""
    for name, value in settings_env(SinkSettings, sink_pace_burst_s=burst_s).items():
        monkeypatch.setenv(name, value)
    client = _BudgetOnly(100_000)
    sink = Sink(SinkSettings(), client=client)  # type: ignore[arg-type]
    try:
        allowance = 100_000 * sink.s.sink_budget_share / DAY_S * burst_s
        now = time.monotonic()
        assert sink._early_writes(now)

        def costs_calls(n: int) -> Callable[[], None]:
            def flush() -> None:
                client.budget.used += n
            return flush

        sink._paced(costs_calls(int(allowance) - 1))
        assert sink._early_writes(time.monotonic())
        sink._paced(costs_calls(5))  # a few calls beyond: the pace refills ~1.1 a second, so this holds a while
        assert not sink._early_writes(time.monotonic())
    finally:
        sink.pool.shutdown()


def record(ext: str, size: int = 10) -> PendingRecord:
    origin = Origin("t", 0, 0, None, None, None, None)
    return PendingRecord("Account", "Stripe_Customer_Id__c", ext, {"Name": ext}, {}, [origin], size=size)


def test_readiness_tells_new_records_from_retries_and_applies_the_bounds() -> None:
    b = Batcher(max_records=3, max_bytes=10**6, max_age_s=1.0)
    t0 = time.monotonic()
    b.add(record("cus_a"))
    assert b.readiness(t0) == Readiness(ready=1, fresh=1, full=False, aged=False)
    retry = record("cus_b")
    retry.not_before = t0 + 0.5
    b.requeue(retry)
    assert b.readiness(t0) == Readiness(ready=1, fresh=1, full=False, aged=False)  # not yet due
    assert b.readiness(t0 + 0.6).fresh == 1 and b.readiness(t0 + 0.6).ready == 2
    assert b.readiness(t0 + 1.1).aged  # cus_a reached the max age
    b.add(record("cus_b"))  # new data for a record backing off merges into it and waits for its retry time
    assert b.readiness(t0).ready == 1 and b.readiness(t0 + 0.6).fresh == 1
    b.add(record("cus_c"))
    assert b.readiness(t0 + 0.6).full


# against the emulator ---------------------------------------------------------------------------------------------

def client_for(env: dict[str, str]) -> SalesforceClient:
    return SalesforceClient(SalesforceSettings(**{k.removeprefix("PAYSYNC_").lower(): v for k, v in env.items()
                                                  if k.startswith("PAYSYNC_SALESFORCE")}), SinkMetrics())


def accounts(client: SalesforceClient, prefix: str) -> int:
    return len(client.query(f"SELECT Id FROM Account WHERE Stripe_Customer_Id__c LIKE '{prefix}%'"))


def account(ext: str) -> dict[str, Any]:
    return make_upsert("Account", "Stripe_Customer_Id__c", ext, {"Name": ext})


def flushes(running: Any, reason: str) -> float:
    return running.sink.metrics.registry.get_sample_value("paysync_sink_flushes_total", {"reason": reason}) or 0.0


def writes(emulator: Any) -> int:
    calls = emulator.stats()["calls"]
    return int(sum(calls.get(k, 0) for k in ("composite", "collections", "bulk", "rest")))


@pytest.mark.kafka
@pytest.mark.slow
def test_a_lone_record_lands_long_before_the_max_age(emulator: Any, sink_env: dict[str, str], produce: Any,
                                                      run_sink: Any) -> None:
    running = run_sink(sink_batch_max_age_s=30.0)
    client = client_for(sink_env)
    produced = time.monotonic()
    produce([account("cus_lone1")])
    assert wait_for(lambda: accounts(client, "cus_lone1") == 1, 10)  # the max age is 30 s
    assert time.monotonic() - produced < 10
    assert flushes(running, "idle") >= 1


@pytest.mark.kafka
@pytest.mark.slow
def test_a_burst_arriving_during_a_write_is_gathered_into_few_calls(emulator: Any, sink_env: dict[str, str],
                                                                    produce: Any, run_sink: Any) -> None:
    running = run_sink(sink_batch_max_age_s=30.0, sink_bulk_threshold=100_000)
    client = client_for(sink_env)
    emulator.handle.admin("POST", "/_emulator/gate", {"value": "cus_hold"})
    produce([account("cus_hold")])
    # written at once (not after 30 s), and held inside its write by the emulator's insert gate
    assert wait_for(lambda: emulator.stats()["gate"]["waiting"] == 1, 10)
    before = writes(emulator)
    produce([account(f"cus_burst{i}") for i in range(2000)])  # all of it arrives while the write is in flight
    emulator.handle.admin("POST", "/_emulator/gate/release")
    assert wait_for(lambda: accounts(client, "cus_burst") == 2000, 20)
    assert accounts(client, "cus_hold") == 1
    burst_calls = writes(emulator) - before
    # one Composite call carries 1,000 upserts: a gathered burst costs about 2 calls; never one per 200 records
    assert burst_calls <= 6, emulator.stats()["calls"]
    assert flushes(running, "age") == 0 and flushes(running, "full") == 0
