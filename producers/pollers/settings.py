"""Poller and backfill configuration (env prefix `PAYSYNC_`, the API key also from `_FILE`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from paysync.settings import KafkaConnection, PaysyncSettings, TopicSettings


class PollerSettings(PaysyncSettings):
    """What the pollers and backfill need to reach Stripe and how hard they may push it."""

    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")

    stripe_api_key: SecretStr = Field(default=SecretStr(""), description="sk_/rk_ key (restricted read is enough)")
    stripe_api_base: str = Field(default="https://api.stripe.com", description="API base URL (simulator in tests)")
    stripe_rate_limit_per_s: float = Field(default=20.0, gt=0, le=100, description="below Stripe's 25/s test, 100/s live")
    stripe_accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Connect accounts to poll besides the platform (comma separated)")
    poll_interval_s: float = Field(default=30.0, gt=0, description="time between polls")
    poll_overlap_s: int = Field(default=300, ge=0, description="a deep poll re-lists this far behind the cursor (late visibility)")
    poll_recent_overlap_s: int = Field(default=10, ge=0, description="ordinary polls re-list this far behind the cursor")
    poll_deep_every_s: float = Field(default=300.0, ge=0, description="how often a poll is deep; 0 = every poll")
    poll_initial_lookback_s: int = Field(default=3600, ge=0, description="first start: list this far back")
    payout_lookback_days: int = Field(default=14, ge=1, le=90, description="payouts watched until paid/failed")
    poller_metrics_host: str = Field(default="127.0.0.1")
    poller_metrics_port: int = Field(default=9109, ge=0, le=65535, description="0 = off")
    poll_publish_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("stripe_accounts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def topic_prefix(self) -> str:
        """Compatibility for `producers/backfill.py` until it reads `settings.topics.prefix`; then delete this."""
        return self.topics.prefix
