"""`paysync poll [--once] [--only events|balance] [--interval S] [--create-topics]`: run the pollers.

Settings: `PollerSettings` (`PAYSYNC_STRIPE_API_KEY[_FILE]`, `PAYSYNC_STRIPE_API_BASE`,
`PAYSYNC_POLL_INTERVAL_S` …). Metrics on `PAYSYNC_POLLER_METRICS_PORT`. SIGTERM stops after the
current poll. A Stripe error that retries cannot fix is logged once (with its request id) and
polling carries on at the next interval. With `PAYSYNC_POLL_SKIP_DELIVERED` (on by default) a listed
event already read back from `stripe.events` is not published again (`producers.pollers.delivered`;
`paysync_poller_copies_dropped_total` counts them).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from paysync.logs import setup_logging
from paysync.topics import paysync_topic_names, replication_problem

if TYPE_CHECKING:
    from producers.pollers.delivered import DeliveredEvents

log = logging.getLogger("producers.pollers")
STARTUP_WAIT_S = 10.0  # the longest the first poll waits for the ids already on stripe.events to be read back


class Poller(Protocol):
    name: str

    def poll_once(self, now: float | None = None) -> int: ...


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync poll", description="Stripe events and balance-transaction pollers")
    p.add_argument("--once", action="store_true", help="poll once and exit")
    p.add_argument("--only", choices=["events", "balance"], help="run one poller only")
    p.add_argument("--interval", type=float, help="seconds between polls (PAYSYNC_POLL_INTERVAL_S, default 30)")
    p.add_argument("--create-topics", action="store_true")
    p.add_argument("--log-level", default="INFO")
    return p


def run(pollers: list[Poller] | Callable[[], list[Poller]], interval_s: float, stop: threading.Event,
        metrics: dict[str, Any] | None = None, once: bool = False) -> int:
    """Poll every poller each interval until `stop`; returns the exit status.

    `pollers` may be a callable (`PollerFleet.current`): called each round, so accounts come and go. A poller
    that stopped at its page budget (`more`) gets another turn right after the others (fair share).
    """
    from producers.stripe_api import StripeApiError

    last_error: dict[str, str] = {}
    last_ok: dict[str, float] = {}
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        current = pollers() if callable(pollers) else pollers
        queue = list(current)
        for poller in queue:
            try:
                n = poller.poll_once()
            except StripeApiError as exc:
                failures += 1
                if last_error.get(poller.name) != str(exc):  # surfaced once, not every interval
                    log.error("stripe call failed", extra={"poller": poller.name, "status": exc.status,
                                                           "request_id": exc.request_id, "outcome": exc.outcome.value})
                last_error[poller.name] = str(exc)
                if metrics:
                    metrics["runs"].labels(poller.name, "stripe_error").inc()
                continue
            except Exception:  # noqa: BLE001 - one poll failing (e.g. the broker) must not end the process
                failures += 1
                log.exception("poll failed", extra={"poller": poller.name})
                if metrics:
                    metrics["runs"].labels(poller.name, "error").inc()
                continue
            last_error.pop(poller.name, None)
            last_ok[poller.name] = time.time()
            if getattr(poller, "more", False) and len(queue) < 10 * len(current):
                queue.append(poller)  # a catch-up goes on after every other account had its turn
            if metrics:
                metrics["runs"].labels(poller.name, "ok").inc()
                metrics["published"].labels(poller.name).inc(n)
                metrics["last_success"].labels(poller.name).set(time.time())
            log.info("polled", extra={"poller": poller.name, "published": n})
        if metrics and "lag" in metrics:
            for poller in current:  # seconds since the poller last completed a poll (its data is this old)
                metrics["lag"].labels(poller.name).set(time.time() - last_ok.get(poller.name, 0.0))
        if once:
            return 1 if failures else 0
        stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
    return 0


def _metrics() -> dict[str, Any]:
    """The pollers' metrics on the default registry (one poller process)."""
    from prometheus_client import Counter, Gauge

    return {
        "runs": Counter("paysync_poller_runs_total", "polls by result", ["poller", "result"]),
        "published": Counter("paysync_poller_published_total", "records published", ["poller"]),
        "last_success": Gauge("paysync_poller_last_success_timestamp_seconds", "last good poll", ["poller"]),
        "lag": Gauge("paysync_poller_lag_seconds", "seconds since the poller (one per account) last completed a poll",
                     ["poller"]),
        "dropped": Counter("paysync_poller_copies_dropped_total",
                           "listed events not published: already read back from stripe.events", ["poller"]),
    }


def _delivered_gauges(delivered: DeliveredEvents, max_ids: int) -> None:
    """The seen-set's size, its bound (`PAYSYNC_POLL_DELIVERED_MAX_IDS`, set once) and whether it is used (1) or every
    listed event is published (0)."""
    from prometheus_client import Gauge

    Gauge("paysync_poller_delivered_ids", "event ids read back from stripe.events and remembered").set_function(
        lambda: len(delivered))
    bound = Gauge("paysync_poller_delivered_max_ids", "the most event ids the set remembers (its bound)")
    bound.set(max_ids)
    Gauge("paysync_poller_delivered_current", "1 while the remembered ids are used to drop copies").set_function(
        lambda: 1.0 if delivered.current() else 0.0)


def main(argv: list[str]) -> int:
    """Entry point of `paysync poll`."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    from prometheus_client import REGISTRY, start_http_server

    from producers.pollers.accounts import AccountDirectory
    from producers.pollers.balance_poller import BalanceTransactionsPoller
    from producers.pollers.events_poller import EventsPoller
    from producers.pollers.fleet import PollerFleet
    from producers.pollers.listing import HorizonConfig
    from producers.pollers.settings import PollerSettings
    from producers.pollers.wiring import open_delivered_events, open_stripe_io

    settings = PollerSettings()
    if not settings.stripe_api_key.get_secret_value():
        log.error("no Stripe API key: set PAYSYNC_STRIPE_API_KEY or PAYSYNC_STRIPE_API_KEY_FILE")
        return 2
    io = open_stripe_io(settings, args.create_topics)
    problem = replication_problem(io.kafka_conf, paysync_topic_names(settings.topics.prefix),
                                  settings.topics.replication_factor, settings.topics.min_insync_replicas)
    if problem:
        log.error("topics not replicated as required", extra={"error": problem})
        return 2
    publisher, api, cursors = io.publisher, io.api, io.cursors
    horizon = HorizonConfig(horizon_s=settings.poll_visibility_horizon_s, deep_every_s=settings.poll_sweep_every_s,
                            initial_lookback_s=settings.poll_initial_lookback_s,
                            max_pages_per_poll=settings.poll_max_pages_per_turn)
    common: dict[str, Any] = {"topic_prefix": settings.topics.prefix, "horizon": horizon,
                              "publish_timeout_s": settings.poll_publish_timeout_s}
    metrics = _metrics()
    delivered = open_delivered_events(settings, io.kafka_conf) if args.only in (None, "events") else None
    if delivered is not None:
        _delivered_gauges(delivered, settings.poll_delivered_max_ids)
        delivered.wait_current(STARTUP_WAIT_S)  # bounded: if it is not current by then, the first polls publish all

    events_horizon = replace(horizon, hold_newest_s=settings.poll_hold_newest_s if delivered else 0)

    def count_dropped(poller: str, n: int) -> None:
        metrics["dropped"].labels(poller).inc(n)

    def pollers_of(account: str | None, directory: AccountDirectory) -> list[Poller]:
        made: list[Poller] = []
        if args.only in (None, "events"):
            observers = (directory.observe,) if account is None else ()
            made.append(EventsPoller(api, publisher, cursors, account=account, observers=observers,
                                     delivered=delivered, on_dropped=count_dropped,
                                     **{**common, "horizon": events_horizon}))
        if args.only in (None, "balance"):
            made.append(BalanceTransactionsPoller(api, publisher, cursors, account=account,
                                                  payout_lookback_days=settings.payout_lookback_days, **common))
        return made

    directory = AccountDirectory(api, settings.stripe_accounts, settings.poll_discover_accounts,
                                 settings.poll_accounts_every_s)
    fleet = PollerFleet(directory, pollers_of)
    if settings.poller_metrics_port and not args.once:
        start_http_server(settings.poller_metrics_port, addr=settings.poller_metrics_host, registry=REGISTRY)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return run(fleet.current, args.interval or settings.poll_interval_s, stop, metrics, once=args.once)
    except KeyboardInterrupt:
        return 130
    finally:
        if delivered is not None:
            delivered.close()
        publisher.close()
        log.info("pollers stopped", extra={"stripe_api_calls": api.calls_made})
