"""The receiver's Prometheus metrics, in a registry of their own (one per app instance)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REJECT_REASONS = (
    "missing_signature", "malformed_signature", "bad_signature", "timestamp_too_old", "timestamp_in_future",
    "body_too_large", "unsupported_media_type", "malformed_json", "not_an_event", "publish_failed",
)

CUT_REASONS = ("header_too_large", "header_timeout", "body_timeout", "too_many_connections")


@dataclass(frozen=True)
class WebhookMetrics:
    registry: CollectorRegistry
    received: Counter
    accepted: Counter
    rejected: Counter
    publish_seconds: Histogram
    in_flight: Gauge
    connections_cut: Counter

    @classmethod
    def create(cls) -> "WebhookMetrics":
        reg = CollectorRegistry()
        rejected = Counter("paysync_webhook_rejected_total", "webhooks refused, by reason", ["reason"], registry=reg)
        for reason in REJECT_REASONS:
            rejected.labels(reason)
        cut = Counter("paysync_webhook_connections_cut_total", "connections refused or closed by the protocol guard "
                      "(producers.webhook.guard), by reason", ["reason"], registry=reg)
        for reason in CUT_REASONS:
            cut.labels(reason)
        return cls(
            registry=reg,
            received=Counter("paysync_webhook_received_total", "webhook requests received", registry=reg),
            accepted=Counter("paysync_webhook_accepted_total", "webhooks acknowledged after the broker's ack",
                             registry=reg),
            rejected=rejected,
            publish_seconds=Histogram(
                "paysync_webhook_publish_seconds", "time from produce to the broker's ack", registry=reg,
                buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
            in_flight=Gauge("paysync_webhook_in_flight", "webhooks waiting for the broker's ack", registry=reg),
            connections_cut=cut,
        )
