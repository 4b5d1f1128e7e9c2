"""`paysync webhook [--host H] [--port P] [--metrics-port M] [--create-topics]`: run the receiver.

Settings come from `WebhookSettings` (env `PAYSYNC_…`, `KAFKA_BOOTSTRAP_SERVERS`); flags override.
uvicorn serves the app with uvloop + httptools through `producers.webhook.guard` (header size and deadlines,
body deadline, connection cap); SIGTERM drains in-flight requests, then flushes.
"""

from __future__ import annotations

import argparse
import logging
import resource
from typing import TYPE_CHECKING, cast

from paysync.logs import setup_logging
from paysync.settings import ConfigError
from paysync.topics import create_topics, paysync_topic_names, replication_problem

if TYPE_CHECKING:
    from producers.thin_events import ThinEventFetcher
    from producers.webhook.app import WebhookApp
    from producers.webhook.metrics import WebhookMetrics
    from producers.webhook.settings import WebhookSettings

log = logging.getLogger("producers.webhook")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync webhook", description="Stripe webhook receiver -> Kafka")
    p.add_argument("--host", help="listen address (PAYSYNC_WEBHOOK_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (PAYSYNC_WEBHOOK_PORT, default 8088)")
    p.add_argument("--metrics-port", type=int, help="Prometheus port, 0 = off (PAYSYNC_WEBHOOK_METRICS_PORT)")
    p.add_argument("--create-topics", action="store_true", help="create paysync's topics first (idempotent)")
    p.add_argument("--log-level", default="INFO")
    return p


FD_HEADROOM = 256  # descriptors beyond the connection cap: Kafka sockets, logs, the metrics server


def ensure_fd_limit(max_connections: int) -> str | None:
    """Raise the soft open-files limit to hold `max_connections` (up to the hard limit); the problem, if any."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            return (f"PAYSYNC_WEBHOOK_MAX_CONNECTIONS={max_connections} needs {needed} open files, the hard limit "
                    f"is {hard}: lower the cap or raise the limit (ulimit -n)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return None


def main(argv: list[str]) -> int:
    """Entry point of `paysync webhook`; returns the exit status."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    from prometheus_client import start_http_server

    from producers.publisher import KafkaPublisher, producer_config
    from producers.webhook.app import WebhookApp
    from producers.webhook.metrics import WebhookMetrics
    from producers.webhook.settings import WebhookSettings

    try:
        settings = WebhookSettings()
    except (ConfigError, ValueError) as exc:
        log.error("invalid configuration", extra={"error": str(exc).splitlines()[0]})
        return 2
    if not settings.webhook_secrets:
        log.error("no webhook secret: set PAYSYNC_WEBHOOK_SECRETS or PAYSYNC_WEBHOOK_SECRETS_FILE")
        return 2
    fd_problem = ensure_fd_limit(settings.webhook_max_connections)
    if fd_problem:
        log.error("invalid configuration", extra={"error": fd_problem})
        return 2
    host = args.host or settings.webhook_host
    port = settings.webhook_port if args.port is None else args.port
    metrics_port = settings.webhook_metrics_port if args.metrics_port is None else args.metrics_port
    kafka_conf = settings.kafka.confluent_config()
    replication = settings.topics.replication_factor, settings.topics.min_insync_replicas
    if args.create_topics:
        create_topics(kafka_conf, settings.topics.prefix, settings.topics.partitions, 30.0, *replication)
    problem = replication_problem(kafka_conf, paysync_topic_names(settings.topics.prefix), *replication)
    if problem:
        log.error("topics not replicated as required", extra={"error": problem})
        return 2
    timeout_ms = int(settings.webhook_publish_timeout_s * 1000)
    publisher = KafkaPublisher(
        producer_config(kafka_conf, message_timeout_ms=max(500, timeout_ms - 500), linger_ms=settings.webhook_linger_ms)
    ).start()
    metrics = WebhookMetrics.create()
    if metrics_port:
        start_http_server(metrics_port, addr=settings.webhook_metrics_host, registry=metrics.registry)
    app = WebhookApp(
        thin_fetcher=_thin_fetcher(settings),
        publisher=publisher,
        secrets=settings.secret_bytes(),
        topic_prefix=settings.topics.prefix,
        tolerance_s=settings.webhook_tolerance_s,
        future_tolerance_s=settings.webhook_future_tolerance_s,
        max_body_bytes=settings.webhook_max_body_bytes,
        publish_timeout_s=settings.webhook_publish_timeout_s,
        metrics=metrics,
        on_shutdown=lambda: log.info("flushed", extra={"unflushed": publisher.close()}),
    )
    log.info("webhook receiver starting", extra={"host": host, "port": port, "metrics_port": metrics_port,
                                                 "secrets": len(settings.webhook_secrets)})
    _serve(app, settings, host, port, metrics)
    return 0


def _thin_fetcher(settings: WebhookSettings) -> ThinEventFetcher | None:
    """The thin-event fetcher: only with a key to fetch with."""
    if not settings.stripe_api_key.get_secret_value():
        return None
    from producers.stripe_api import StripeApi
    from producers.thin_events import ThinEventFetcher

    return ThinEventFetcher(StripeApi(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base,
                                      rate_per_s=settings.webhook_thin_fetch_rate_per_s, max_attempts=4),
                            settings.topics.prefix)


def _serve(app: WebhookApp, settings: WebhookSettings, host: str, port: int, metrics: WebhookMetrics) -> None:
    """uvicorn with uvloop and the guarded httptools protocol, until SIGTERM."""
    import uvicorn

    from producers.webhook.guard import guarded_protocol

    # uvicorn hints an int but hands the value to asyncio.wait_for, which takes fractional seconds
    graceful_s = cast(int, settings.webhook_publish_timeout_s + 2)
    protocol = guarded_protocol(settings.limits(), on_refusal=lambda reason: metrics.connections_cut.labels(reason).inc())
    uvicorn.run(app, host=host, port=port, loop="uvloop", http=protocol, lifespan="on", access_log=False,
                log_config=None, timeout_graceful_shutdown=graceful_s, timeout_keep_alive=settings.webhook_keep_alive_s)
