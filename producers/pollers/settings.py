"""Poller and backfill configuration (env prefix `PAYSYNC_`, the API key also from `_FILE`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from paysync.settings import COMPOSED_CONFIG, KafkaConnection, PaysyncSettings, TopicSettings, env_name

# The least visibility horizon against Stripe itself: an entry can appear in a Stripe list minutes after its
# `created` second (tap-stripe#45, issue 15 point 1: the late look-back), and Stripe documents no bound on it, so a
# horizon of seconds would lose such entries for good. Only another base (the simulator, whose largest delay is a
# known knob, `visibility.py`) may set a shorter one, down to `MIN_HORIZON_S`.
STRIPE_MIN_HORIZON_S = 300
MIN_HORIZON_S = 5


def is_stripe_base(api_base: str) -> bool:
    """Whether `api_base` is Stripe's own API (api.stripe.com or another *.stripe.com host)."""
    host = (urlsplit(api_base.strip()).hostname or "").lower()
    return host == "stripe.com" or host.endswith(".stripe.com")


class PollerSettings(PaysyncSettings):
    """What the pollers and backfill need to reach Stripe and how hard they may push it."""

    model_config = COMPOSED_CONFIG

    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")

    stripe_api_key: SecretStr = Field(default=SecretStr(""), description="sk_/rk_ key (restricted read is enough)")
    stripe_api_base: str = Field(default="https://api.stripe.com", description="API base URL (simulator in tests)")
    stripe_rate_limit_per_s: float = Field(default=20.0, gt=0, le=100, description="below Stripe's 25/s test, 100/s live")
    stripe_accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Connect accounts to poll besides the platform (comma separated)")
    poll_interval_s: float = Field(default=30.0, gt=0, description="time between polls")
    stripe_endpoint_rate_limit_per_s: float = Field(
        default=20.0, gt=0, le=25, description="per named operation ('Rate limits': endpoints default to 25/s)")
    poll_visibility_horizon_s: int = Field(
        default=600, ge=MIN_HORIZON_S,
        description=f"the latest a listed entry may appear after its created second (>= {STRIPE_MIN_HORIZON_S} "
                    "against Stripe's own API base; a simulator with a known largest delay may use less)")
    poll_sweep_every_s: float = Field(default=300.0, gt=0, description="time between sweeps behind the horizon")
    poll_max_pages_per_turn: int = Field(default=50, ge=1, description="a catch-up yields to other accounts after this")
    poll_discover_accounts: bool = Field(default=True, description="list GET /v1/accounts and react to Connect events")
    poll_accounts_every_s: float = Field(default=600.0, gt=0, description="how often /v1/accounts is listed again")
    poll_initial_lookback_s: int = Field(default=3600, ge=0, description="first start: list this far back")
    payout_lookback_days: int = Field(default=14, ge=1, le=90, description="payouts watched until paid/failed")
    poller_metrics_host: str = Field(default="127.0.0.1")
    poller_metrics_port: int = Field(default=9109, ge=0, le=65535, description="0 = off")
    poll_publish_timeout_s: float = Field(default=30.0, gt=0)
    poll_skip_delivered: bool = Field(
        default=True, description="do not publish a listed event whose id the poller read back from stripe.events "
                                  "(usually the webhook's copy, durable there): saves a broker write, a stream decode "
                                  "and a version lookup per copy; off = publish every listed event")
    poll_delivered_window_s: float = Field(
        default=1200.0, gt=0, description="how long an id read back is remembered (longer than the visibility horizon "
                                          "plus a sweep interval, so a late sweep's copies are caught too)")
    poll_delivered_max_ids: int = Field(
        default=200_000, ge=1, description="at most this many ids remembered (~200 bytes each: 40 MB at the default)")
    poll_hold_newest_s: int = Field(
        default=5, ge=0, description="with poll_skip_delivered: the events tail leaves events created this recently to "
                                     "the next poll, so their webhooks reach the topic first and the poller's copy is "
                                     "dropped (events the webhooks missed arrive one poll later); 0 = off")
    poll_delivered_fetch_wait_ms: int = Field(
        default=1000, ge=0, le=10_000,
        description="the delivered-events reader's fetch.wait.max.ms: the broker answers its fetch after this long "
                    "unless poll_delivered_fetch_min_bytes arrived first (librdkafka's default: 500); at most half of "
                    "poll_delivered_max_behind_s")
    poll_delivered_fetch_min_bytes: int = Field(
        default=1_048_576, ge=1, le=52_428_800,
        description="the delivered-events reader's fetch.min.bytes (librdkafka's default: 1, an answer per produce "
                    "request): with 1 MiB the reader fetches about once per poll_delivered_fetch_wait_ms")
    poll_delivered_max_behind_s: float = Field(
        default=30.0, gt=0, description="the ids are used only while the poller's consumer confirmed at most this long "
                                        "ago that it had read stripe.events to its end; otherwise all is published")

    @model_validator(mode="after")
    def _delivered_fetch_within_behind(self) -> "PollerSettings":
        """A reader whose fetches wait longer than half the staleness bound would keep the set from being current."""
        if self.poll_delivered_fetch_wait_ms > self.poll_delivered_max_behind_s * 500:
            raise ValueError(
                f"{env_name(type(self), 'poll_delivered_fetch_wait_ms')}={self.poll_delivered_fetch_wait_ms} is above "
                f"half of {env_name(type(self), 'poll_delivered_max_behind_s')} ({self.poll_delivered_max_behind_s} s): "
                "the delivered-events set would rarely be current, so every listed event would be published")
        return self

    @model_validator(mode="after")
    def _within_sandbox_limit(self) -> "PollerSettings":
        """'Rate limits': "Sandbox: 25 operations" per second: a test key may not be configured above it."""
        key = self.stripe_api_key.get_secret_value()
        if key.startswith(("sk_test_", "rk_test_")) and self.stripe_rate_limit_per_s > 25:
            raise ValueError("PAYSYNC_STRIPE_RATE_LIMIT_PER_S above 25 with a test-mode key (sandbox limit 25/s)")
        return self

    @model_validator(mode="after")
    def _horizon_floor_on_stripe(self) -> "PollerSettings":
        """Against Stripe's own API the horizon is at least `STRIPE_MIN_HORIZON_S` (late entries, see above)."""
        if is_stripe_base(self.stripe_api_base) and self.poll_visibility_horizon_s < STRIPE_MIN_HORIZON_S:
            raise ValueError(
                f"{env_name(type(self), 'poll_visibility_horizon_s')}={self.poll_visibility_horizon_s} is below "
                f"{STRIPE_MIN_HORIZON_S} with Stripe's API base ({self.stripe_api_base}): Stripe lists entries "
                f"minutes after their created second (tap-stripe#45), so a shorter horizon loses them for good; "
                f"only a simulator base may go down to {MIN_HORIZON_S}")
        return self

    @field_validator("stripe_accounts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
