"""What every Stripe-listing entry point (`paysync poll`, `paysync backfill`) opens: Kafka, Stripe, cursors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paysync.topics import STRIPE_EVENTS, create_topics
from producers.cursors import CursorStore
from producers.pollers.delivered import DeliveredConfig, DeliveredEvents
from producers.pollers.settings import PollerSettings
from producers.publisher import KafkaPublisher, producer_config
from producers.stripe_api import StripeApi


@dataclass
class StripeIO:
    """The clients a poller or the backfill works with."""

    kafka_conf: dict[str, Any]
    publisher: KafkaPublisher
    api: StripeApi
    cursors: CursorStore


def open_stripe_io(settings: PollerSettings, create: bool) -> StripeIO:
    """Create the topics if asked, then the publisher, the rate-limited Stripe client and the cursor store."""
    kafka_conf = settings.kafka.confluent_config()
    if create:
        create_topics(kafka_conf, settings.topics.prefix, settings.topics.partitions,
                      replication_factor=settings.topics.replication_factor,
                      min_insync_replicas=settings.topics.min_insync_replicas)
    publisher = KafkaPublisher(producer_config(kafka_conf, int(settings.poll_publish_timeout_s * 1000) - 1000))
    api = StripeApi(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base,
                    rate_per_s=settings.stripe_rate_limit_per_s,
                    endpoint_rate_per_s=settings.stripe_endpoint_rate_limit_per_s)
    return StripeIO(kafka_conf, publisher, api, CursorStore(kafka_conf, publisher, settings.topics.prefix))


def open_delivered_events(settings: PollerSettings, kafka_conf: dict[str, Any]) -> DeliveredEvents | None:
    """The running reader of event ids already on `stripe.events`, or None when `poll_skip_delivered` is off."""
    if not settings.poll_skip_delivered:
        return None
    config = DeliveredConfig(window_s=settings.poll_delivered_window_s, max_ids=settings.poll_delivered_max_ids,
                             max_behind_s=settings.poll_delivered_max_behind_s,
                             fetch_min_bytes=settings.poll_delivered_fetch_min_bytes,
                             fetch_wait_ms=settings.poll_delivered_fetch_wait_ms)
    return DeliveredEvents(kafka_conf, STRIPE_EVENTS.full_name(settings.topics.prefix), config).start()
