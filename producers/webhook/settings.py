"""Receiver configuration (env prefix `PAYSYNC_`, secrets also from `*_FILE`), read once at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from paysync.settings import KafkaConnection, PaysyncSettings, TopicSettings, comma_or_line_list

if TYPE_CHECKING:
    from producers.webhook.guard import Limits


class WebhookSettings(PaysyncSettings):
    """`PAYSYNC_WEBHOOK_SECRETS=whsec_a,whsec_b` (or `_FILE`, one per line): every secret being rotated."""

    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")

    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="endpoint signing secrets (comma/newline separated)"
    )
    webhook_tolerance_s: int = Field(default=300, ge=1, description="oldest accepted signature timestamp (s ago)")
    webhook_future_tolerance_s: int = Field(default=60, ge=0, description="newest accepted timestamp (s ahead)")
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="413 above this")
    webhook_host: str = Field(default="127.0.0.1", description="listen address")
    webhook_port: int = Field(default=8088, ge=0, le=65535)
    webhook_metrics_host: str = Field(default="127.0.0.1")
    webhook_metrics_port: int = Field(default=9108, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    webhook_publish_timeout_s: float = Field(default=5.0, gt=0.5, le=120, description="503 after this")
    webhook_linger_ms: int = Field(default=5, ge=0, le=1000)
    stripe_api_key: SecretStr = Field(default=SecretStr(""), description="fetches thin events' objects; empty = off")
    stripe_api_base: str = Field(default="https://api.stripe.com", description="API base URL (simulator in tests)")
    webhook_thin_fetch_rate_per_s: float = Field(default=10.0, gt=0, le=25, description="thin-event fetches per second")
    # The receiver facing the internet (producers.webhook.guard). Stripe's webhook requests carry a handful of
    # short headers (Content-Type, User-Agent "Stripe/1.0 (+https://stripe.com/docs/webhooks)", Stripe-Signature
    # `t=…,v1=<64 hex>[,v1=…],v0=…`, Accept, Cache-Control): a few hundred bytes, under 2 KiB even behind a CDN
    # that adds its own (a captured delivery through Cloudflare: Braze docs, Stripe data transformation,
    # "Example Stripe webhook payload"). 16 KiB is h11's and Node's default cap.
    webhook_max_header_bytes: int = Field(default=16 * 1024, ge=4096, le=1024 * 1024,
                                          description="request line + headers above this: 431 and close")
    webhook_header_timeout_s: float = Field(default=10.0, gt=0, le=300,
                                            description="headers not complete this long after the connection "
                                                        "opened (or the last response): closed")
    webhook_body_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                          description="body not complete this long after its headers: 408, closed")
    webhook_max_connections: int = Field(default=4096, ge=16, le=1_000_000,
                                         description="open connections above this: 503, closed")
    webhook_keep_alive_s: int = Field(default=5, ge=1, le=300, description="idle kept-alive connection closed after")

    _split = field_validator("webhook_secrets", mode="before")(comma_or_line_list)

    def limits(self) -> Limits:
        """The protocol guard's limits."""
        from producers.webhook.guard import Limits  # uvicorn is imported only by the process that serves

        return Limits(max_header_bytes=self.webhook_max_header_bytes, header_timeout_s=self.webhook_header_timeout_s,
                      body_timeout_s=self.webhook_body_timeout_s, max_connections=self.webhook_max_connections)

    def secret_bytes(self) -> list[bytes]:
        """The secrets as HMAC keys (never log them)."""
        return [s.get_secret_value().encode() for s in self.webhook_secrets]
