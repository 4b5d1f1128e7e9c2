"""The sink's configuration (`PAYSYNC_…` environment variables, `*_FILE` for secrets), read once at start-up.

`SinkSettings` composes its parts as fields, each reading its own variables: `kafka` (`KAFKA_BOOTSTRAP_SERVERS` …),
`topics` (`PAYSYNC_TOPIC_*`) and `salesforce` (`PAYSYNC_SALESFORCE_*`, also the connection of `paysync reconcile`
and `paysync doctor`); its own fields are `PAYSYNC_SINK_*`.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from paysync.settings import COMPOSED_CONFIG, KafkaConnection, PaysyncSettings, TopicSettings, env_name

AuthFlow = Literal["client_credentials", "password", "jwt", "session"]

GENERIC_LOGIN_URL = "https://login.salesforce.com"
# "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration": "For this flow, requests to
# https://login.salesforce.com and https://test.salesforce.com aren't supported. Use your My Domain URL instead."
# (Salesforce Help, "Migrate from OAuth Username-Password to Client Credentials Flow", says the same.)
_GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


class SalesforceSettings(PaysyncSettings):
    """How to reach and log in to Salesforce (`PAYSYNC_SALESFORCE_*`)."""

    salesforce_login_url: str | None = Field(
        default=None, description="OAuth token endpoint host: the org's My Domain URL (required for client_credentials; "
                                  "password/jwt default to https://login.salesforce.com)")
    # "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration": the aud claim is https://login.salesforce.com,
    # https://test.salesforce.com (sandbox) or the Experience Cloud site URL, whatever host the token is posted to.
    salesforce_jwt_audience: str = Field(default=GENERIC_LOGIN_URL, description="JWT bearer `aud` claim")
    salesforce_auth_flow: AuthFlow = Field(default="client_credentials", description="how to obtain a session")
    salesforce_client_id: str | None = Field(default=None, description="connected app consumer key")
    salesforce_client_secret: SecretStr | None = None
    salesforce_username: str | None = None
    salesforce_password: SecretStr | None = Field(default=None, description="password (+ security token)")
    salesforce_private_key: SecretStr | None = Field(default=None, description="PEM RSA key for the JWT bearer flow")
    salesforce_instance_url: str | None = Field(default=None, description="only for auth_flow=session")
    salesforce_access_token: SecretStr | None = Field(default=None, description="only for auth_flow=session")
    salesforce_api_version: str = Field(default="59.0")
    salesforce_ca_bundle: str | None = Field(default=None, description="CA bundle path (session.verify)")
    salesforce_timeout_s: float = Field(default=60.0, gt=0)

    def missing_credentials(self) -> list[str]:
        """The settings the chosen auth flow needs that are unset (checked by the entry point)."""
        needed: dict[str, tuple[str, ...]] = {
            "client_credentials": ("salesforce_client_id", "salesforce_client_secret"),
            "password": ("salesforce_client_id", "salesforce_client_secret", "salesforce_username", "salesforce_password"),
            "jwt": ("salesforce_client_id", "salesforce_username", "salesforce_private_key"),
            "session": ("salesforce_instance_url", "salesforce_access_token"),
        }
        if self.salesforce_auth_flow == "client_credentials":
            needed["client_credentials"] += ("salesforce_login_url",)
        unset = [n for n in needed[self.salesforce_auth_flow] if getattr(self, n) in (None, "")]
        return [env_name(SalesforceSettings, n) for n in unset]

    def token_url(self) -> str:
        """The token endpoint host (no trailing slash)."""
        return (self.salesforce_login_url or GENERIC_LOGIN_URL).rstrip("/")

    def config_errors(self) -> list[str]:
        """Start-up problems of the Salesforce settings, one clear line each (empty: fine)."""
        missing = self.missing_credentials()
        errors = [f"auth flow {self.salesforce_auth_flow} needs {', '.join(missing)}"] if missing else []
        host = (urlsplit(self.salesforce_login_url or "").hostname or "").lower()
        if self.salesforce_auth_flow == "client_credentials" and host in _GENERIC_LOGIN_HOSTS:
            errors.append(f"PAYSYNC_SALESFORCE_LOGIN_URL={self.salesforce_login_url} cannot work with client_credentials: "
                          "Salesforce refuses that flow on login/test.salesforce.com; set it to the org's My Domain URL "
                          "(https://<domain>.my.salesforce.com)")
        return errors


class SinkSettings(PaysyncSettings):
    """Batching, paths, retries and budget of `paysync sink`, with its Kafka, topic and Salesforce parts."""

    model_config = COMPOSED_CONFIG

    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings, description="the Salesforce login")

    sink_group_id: str = Field(default="paysync-sink", description="consumer group id")
    sink_session_timeout_ms: int = Field(default=15_000, ge=6_000, description="group session timeout (crash detection)")
    sink_batch_max_records: int = Field(default=10_000, ge=1, description="flush when this many records are pending")
    sink_batch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="flush at this many value bytes")
    sink_batch_max_age_s: float = Field(default=1.0, gt=0, description="flush when the oldest pending record is this old "
                                        "(the upper bound of the wait)")
    sink_adaptive: bool = Field(default=True, description="write new records at once when no Salesforce write is in "
                                "flight (after a short gather), instead of waiting for the max age")
    sink_gather_ms: float = Field(default=5.0, ge=0, le=1000, description="how long an adaptive flush waits for more "
                                  "messages before writing (the consumer's ready messages are taken regardless)")
    # librdkafka's defaults. 200 ms / 64 KiB cut the sink's fetches from 22 to 4.7 a second at 100 events/s
    # (bench/broker_requests.py), but made test_sink_strict_org's bulk-job test time out 2 runs in 10 (not pinned
    # down: likely a backlog found at start-up reaching the sink in partial batches, so smaller Bulk jobs).
    sink_fetch_wait_ms: int = Field(default=500, ge=0, le=10_000, description="the consumer's fetch.wait.max.ms: the "
                                    "broker answers a fetch after this long unless sink_fetch_min_bytes arrived first "
                                    "(the most latency it adds)")
    sink_fetch_min_bytes: int = Field(default=1, ge=1, le=52_428_800, description="the consumer's fetch.min.bytes "
                                      "(1: a fetch is answered as soon as anything arrives)")
    sink_bulk_threshold: int = Field(default=2_000, ge=1, description="records of one object at which Bulk 2.0 is used")
    sink_composite: bool = Field(default=True, description="pack several objects' upserts into one Composite call")
    sink_collection_size: int = Field(default=200, ge=1, le=200, description="records per Collections call")
    sink_concurrency: int = Field(default=4, ge=1, le=16, description="concurrent Salesforce calls per object tier")
    sink_retry_base_s: float = Field(default=0.2, gt=0)
    sink_retry_cap_s: float = Field(default=30.0, gt=0)
    sink_reauth_attempts: int = Field(default=3, ge=1, description="re-logins in a row before a call counts as failed")
    sink_parent_wait_attempts: int = Field(default=3, ge=1, description="tries of a child whose parent is missing")
    sink_parent_wait_s: float = Field(default=10.0, ge=0, description="…and at least this long, before a stub parent")
    sink_budget_share: float = Field(default=0.95, gt=0, le=1, description="pause when this share of the daily API limit is used")
    sink_pause_check_s: float = Field(default=5.0, gt=0, description="how often a paused sink probes the budget")
    sink_pace_burst_s: float = Field(default=600.0, ge=0, le=3600, description="early writes may run ahead of the "
                                     "daily budget's pace by this many seconds of it (a peak's allowance)")
    sink_bulk_max_jobs: int = Field(default=4, ge=1, description="Bulk 2.0 jobs in flight at once")
    sink_bulk_backlog: int = Field(default=20_000, ge=0, description="records waiting (lag + pending) above which "
                                   "Bulk is used even when it costs more calls than Composite")
    sink_bulk_budget_share: float = Field(default=0.8, gt=0, le=1, description="above this share of the daily budget "
                                          "used, a group takes whichever path costs fewer calls")
    sink_bulk_first_poll_s: float = Field(default=1.0, gt=0, description="first Bulk job status poll after submit")
    sink_bulk_poll_max_s: float = Field(default=5.0, gt=0, description="longest gap between Bulk job status polls")
    sink_bulk_timeout_s: float = Field(default=600.0, gt=0, description="abort a job still running after this long")
    sink_write_sync_errors: bool = Field(default=True, description="also upsert a Stripe_Sync_Error__c per dead letter")
    sink_status_events: bool = Field(default=True, description="publish a Stripe_Payment_Event__e per status change of "
                                     "a payment, invoice, refund, dispute or payout (one read call before each batch "
                                     "that carries such statuses; the events ride in the next batch's read call)")
    sink_event_max_age_s: float = Field(default=2.0, gt=0, le=60, description="status events that found no room in "
                                        "a read call are published in a call of their own once this old")
    sink_streams_dead_letters: bool = Field(default=True, description="also consume paysync.dlq and write the streams "
                                            "stage's dead letters as Stripe_Sync_Error__c rows")
    sink_metrics_port: int | None = Field(default=None, description="serve /metrics on 127.0.0.1:<port>")
    sink_metrics_host: str = Field(default="127.0.0.1")
    log_level: str = Field(default="INFO")
