"""`paysync stream`: run one Faust stream worker (several workers share the partitions).

Flags override the `PAYSYNC_STREAM_*` settings. Data topics are created if missing (idempotent), and so are
the internal payout-join topic and the tables' changelogs (compacted); the worker starts only once all of them
are in the cluster's metadata (else exit 2), because Faust's assignor skips a topic it cannot see yet.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from paysync.logs import setup_logging
from paysync.settings import ConfigError, TopicSettings
from paysync.topics import (STRIPE_BALANCE_TRANSACTIONS, STRIPE_EVENTS, create_topics, ensure_topics,
                            paysync_topic_names, replication_problem, resolve_replication, wait_for_topics)
from streams.settings import StreamSettings

log = logging.getLogger("paysync.streams")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync stream", description=__doc__.splitlines()[0])
    p.add_argument("--app-id", help="Faust app id / consumer group (default paysync-streams; topic prefix prepended)")
    p.add_argument("--data-dir", type=Path, help="folder for the RocksDB tables")
    p.add_argument("--store", help="table store URL (rocksdb:// or memory://)")
    p.add_argument("--metrics-port", type=int, help="serve paysync_stream_* and Faust metrics on 127.0.0.1:PORT")
    p.add_argument("--web-port", type=int, help="enable Faust's web server on 127.0.0.1:PORT")
    p.add_argument("--partitions", type=int, help="partition count of the data topics")
    p.add_argument("--commit-interval", type=float, help="seconds between offset commits")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING …")
    p.add_argument("--no-create-topics", action="store_true", help="do not create missing data topics")
    return p


def load_settings(args: argparse.Namespace) -> StreamSettings:
    """Settings from the environment, with the command-line flags applied on top."""
    overrides: dict[str, Any] = {
        "stream_app_id": args.app_id, "stream_data_dir": args.data_dir, "stream_store": args.store,
        "stream_metrics_port": args.metrics_port, "stream_web_port": args.web_port,
        "stream_commit_interval": args.commit_interval, "stream_log_level": args.log_level,
    }
    if args.partitions is not None:
        overrides["topics"] = TopicSettings(partitions=args.partitions)
    return StreamSettings(**{k: v for k, v in overrides.items() if v is not None})


def main(argv: list[str]) -> int:
    """Run the worker until SIGINT/SIGTERM; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args)
    except (ConfigError, ValueError) as exc:
        setup_logging()
        log.error("invalid configuration", extra={"error": str(exc)})
        return 2
    setup_logging(settings.stream_log_level)
    replication = settings.topics.replication_factor, settings.topics.min_insync_replicas
    if not args.no_create_topics:
        created = create_topics(settings.kafka.confluent_config(), settings.topics.prefix, settings.topics.partitions,
                                30.0, *replication)
        if created:
            log.info("created topics", extra={"topics": created})
    # The input topics must be visible before the first rebalance: Faust's assignor ignores a topic it cannot
    # see yet, and its agent would then get no partition until some later rebalance.
    # So must the tables' changelogs, which Faust would create itself only just before that rebalance.
    conf = settings.kafka.confluent_config()
    ensure_topics(conf, [settings.payout_join_topic], settings.topics.partitions, 30.0, False, *replication)
    ensure_topics(conf, settings.changelog_topics, settings.topics.partitions, 30.0, True, *replication)
    inputs = [STRIPE_EVENTS.full_name(settings.topics.prefix),
              STRIPE_BALANCE_TRANSACTIONS.full_name(settings.topics.prefix),
              settings.payout_join_topic, *settings.changelog_topics]
    missing = wait_for_topics(conf, inputs)
    if missing:
        log.error("topics are not in the cluster's metadata; create them (paysync topics create) and start again",
                  extra={"topics": missing})
        return 2
    problem = replication_problem(conf, [*paysync_topic_names(settings.topics.prefix), *inputs], *replication)
    if problem:
        log.error("topics not replicated as required", extra={"error": problem})
        return 2
    rep = resolve_replication(conf, *replication)  # Faust creates any other internal topic with this factor
    settings = settings.model_copy(update={"topics": settings.topics.model_copy(
        update={"replication_factor": rep.factor, "min_insync_replicas": rep.min_insync})})
    if settings.stream_event_loop == "uvloop":
        from mode.loop import use as use_event_loop

        use_event_loop("uvloop")
    from faust.worker import Worker
    from prometheus_client import start_http_server

    from streams.app import build_app, setup_faust_metrics

    stream_app = build_app(settings)
    setup_faust_metrics(stream_app.app)
    if settings.stream_metrics_port is not None:
        start_http_server(settings.stream_metrics_port, addr="127.0.0.1")
    settings.stream_data_dir.mkdir(parents=True, exist_ok=True)
    log.info("stream worker starting", extra={"app_id": settings.app_id, "data_dir": str(settings.stream_data_dir),
                                               "partitions": settings.topics.partitions})
    worker = Worker(stream_app.app, loglevel=settings.stream_log_level.lower(), quiet=True,
                    redirect_stdouts=False, override_logging=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
