"""`paysync sink`: run the Salesforce sink until SIGTERM/SIGINT.

Configuration comes from `PAYSYNC_…` environment variables (see `sinks.settings.SinkSettings`);
the flags below override the most common ones.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from pydantic import ValidationError

from paysync.logs import setup_logging
from paysync.settings import ConfigError, TopicSettings
from paysync.topics import paysync_topic_names, replication_problem
from sinks.metrics import SinkMetrics
from sinks.settings import SinkSettings

log = logging.getLogger("sinks")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync sink", description="Consume salesforce.upserts and upsert into Salesforce.")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    p.add_argument("--group-id", default=None, help="consumer group id (default paysync-sink)")
    p.add_argument("--topic-prefix", default=None, help="topic name prefix")
    p.add_argument("--bulk-threshold", type=int, default=None, help="records of one object at which Bulk 2.0 is used")
    p.add_argument("--log-level", default=None)
    return p


def main(argv: list[str]) -> int:
    """Entry point of `paysync sink`; returns the exit status."""
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.metrics_port is not None:
        overrides["sink_metrics_port"] = args.metrics_port
    if args.group_id:
        overrides["sink_group_id"] = args.group_id
    if args.bulk_threshold is not None:
        overrides["sink_bulk_threshold"] = args.bulk_threshold
    if args.log_level:
        overrides["log_level"] = args.log_level
    try:
        if args.topic_prefix is not None:
            overrides["topics"] = TopicSettings(prefix=args.topic_prefix)
        settings = SinkSettings(**overrides)
    except (ValidationError, ConfigError) as exc:
        sys.stderr.write(f"paysync sink: invalid configuration: {exc}\n")
        return 2
    setup_logging(settings.log_level)
    errors = settings.salesforce.config_errors()
    if errors:
        sys.stderr.write("".join(f"paysync sink: invalid configuration: {e}\n" for e in errors))
        return 2
    problem = replication_problem(settings.kafka.confluent_config(), paysync_topic_names(settings.topics.prefix),
                                  settings.topics.replication_factor, settings.topics.min_insync_replicas)
    if problem:
        sys.stderr.write(f"paysync sink: {problem}\n")
        return 2
    from sinks.auth import AuthError
    from sinks.sink import Sink  # imported late: `paysync sink --help` stays fast

    metrics = SinkMetrics()
    if settings.sink_metrics_port is not None:
        metrics.serve(settings.sink_metrics_port, settings.sink_metrics_host)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("sink starting", extra={"topic_prefix": settings.topics.prefix, "group": settings.sink_group_id})
    try:
        Sink(settings, metrics).run(stop)
    except AuthError as exc:  # refused at start-up: a configuration error, not a reason to pause for ever
        sys.stderr.write(f"paysync sink: Salesforce refused the login at {settings.salesforce.token_url()}: {exc} "
                         "(check PAYSYNC_SALESFORCE_LOGIN_URL, the auth flow and the connected app)\n")
        return 2
    return 0
