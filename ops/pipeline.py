"""The whole pipeline on one machine: broker, both emulators, and every component under a supervisor.

`LocalPipeline` is what the demo, the chaos runner, the benchmarks and the end-to-end tests share:
it wires the components to each other by environment (the same `PAYSYNC_*` settings a production
deployment uses), and offers the probes they need: consumer lag per stage, dead letters, records
in Salesforce, and a reconciliation against the simulator's truth.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from emulators.salesforce_emulator import DEFAULT_CREDENTIALS, start_emulator
from emulators.stripe_simulator.handle import SimulatorHandle, start_simulator
from ops.reconcile.salesforce_side import SalesforceReader
from ops.broker import BrokerConfig, start, stop
from ops.supervisor import Supervisor
from paysync.net import free_port
from paysync.settings import KafkaConnection, TopicSettings, env_name, settings_env
from paysync.topics import (ALL_TOPICS, DEAD_LETTERS, SALESFORCE_UPSERTS, STRIPE_BALANCE_TRANSACTIONS,
                            STRIPE_EVENTS, create_topics, wait_for_topics)
from producers.pollers.settings import PollerSettings
from producers.webhook.settings import WebhookSettings
from sinks.settings import SalesforceSettings, SinkSettings
from streams.settings import StreamSettings

log = logging.getLogger("paysync.pipeline")
_T = TypeVar("_T")

WEBHOOK_SECRETS = ("whsec_paysync_demo_previous", "whsec_paysync_demo_current")

# Late list visibility (issue 15), on by default in the demo, the chaos runner and the shared e2e pipeline: events
# and balance transactions reach the simulator's lists 0-10 s after `created` (webhooks are not late). The pollers
# get a horizon just above that largest delay (allowed below 300 s for a non-Stripe base, `PollerSettings`) and a
# short sweep interval, so a late entry the tail passed is listed within seconds, not minutes.
LATE_VISIBILITY_S = 10.0
HORIZON_MARGIN_S = 2  # `created` is a whole second: the horizon covers ceil(delay) plus this
LATE_SWEEP_EVERY_S = 3.0


def late_poller_settings(max_delay_s: float) -> dict[str, object]:
    """The poller settings for a simulator listing entries up to `max_delay_s` late (none when it is 0)."""
    if max_delay_s <= 0:
        return {}
    return {"poll_visibility_horizon_s": math.ceil(max_delay_s) + HORIZON_MARGIN_S,
            "poll_sweep_every_s": LATE_SWEEP_EVERY_S}

# What a broker answers for a while after it (re)starts: coordinators and leaders are being elected or loaded.
_BROKER_BUSY = frozenset({KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                          KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT,
                          KafkaError.LEADER_NOT_AVAILABLE, KafkaError.NOT_LEADER_FOR_PARTITION,
                          KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})


def _retried(call: Callable[[], _T], attempts: int = 20, pause_s: float = 0.5) -> _T:
    """`call()`, retried while the broker answers with a transient error; the last error is raised."""
    for attempt in range(attempts):
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0]
            if attempt == attempts - 1 or not error.retriable() and error.code() not in _BROKER_BUSY:
                raise
            time.sleep(pause_s)
    raise AssertionError("unreachable")


class Quiet:
    """Whether a condition has held, without a break, for `seconds`: the settle test of the demo, the chaos
    runner and the benchmark. `since` is when the current unbroken run began (None: it does not hold now)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.since: float | None = None

    def update(self, holds: bool, now: float | None = None) -> bool:
        """Record whether the condition holds at `now`; True once it has held for `seconds`."""
        if not holds:
            self.since = None
            return False
        now = time.monotonic() if now is None else now
        if self.since is None:
            self.since = now
        return now - self.since >= self.seconds


@dataclass
class PipelineOptions:
    """What to start and how."""

    workdir: Path
    bootstrap: str | None = None  # None: start a private local broker in workdir
    partitions: int = 6
    seed: int = 7
    simulator_knobs: dict[str, Any] = field(default_factory=dict)
    emulator_knobs: dict[str, Any] = field(default_factory=dict)
    poll_interval_s: float = 5.0
    stream_workers: int = 1
    sink_instances: int = 1
    stripe_rate_limit: float = 0.0
    visibility_max_delay_s: float = 0.0  # simulator: list entries shown 0-N s after `created` (visibility.py, issue 15)
    extra_env: dict[str, str] = field(default_factory=dict)


class LocalPipeline:
    """Start with `start()`, stop with `stop()` (or use as a context manager)."""

    def __init__(self, options: PipelineOptions) -> None:
        self.o = options
        self.prefix = f"p{uuid.uuid4().hex[:8]}."
        self.broker_cfg: BrokerConfig | None = None
        self.bootstrap = options.bootstrap or ""
        self.sf: Any = None
        self.stripe: SimulatorHandle | None = None
        self.supervisor: Supervisor | None = None
        self.ports: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self.generated_at: float | None = None  # wall time the simulator was first seen done generating

    # life cycle ---------------------------------------------------------------------------------

    def start(self, on_step: Callable[[str], None] = lambda s: None) -> "LocalPipeline":
        """Start everything; `on_step` hears what is happening."""
        o = self.o
        if o.workdir.exists():
            shutil.rmtree(o.workdir)
        o.workdir.mkdir(parents=True)
        if not self.bootstrap:
            on_step("starting Kafka (KRaft, local)")
            self.broker_cfg = BrokerConfig(port=free_port(), controller_port=free_port(), data_dir=o.workdir / "kafka")
            self.bootstrap, _ = start(self.broker_cfg, fresh=True)
        conf: dict[str, object] = {"bootstrap.servers": self.bootstrap}
        create_topics(conf, self.prefix, o.partitions)
        # a busy broker (e.g. one loading thousands of partitions after a restart) may host new topics late
        missing = wait_for_topics(conf, [t.full_name(self.prefix) for t in ALL_TOPICS], timeout=120)
        if missing:
            raise RuntimeError(f"topics created but not served by the broker after 120 s: {missing}")
        on_step("starting the Salesforce emulator")
        self.sf = start_emulator(o.workdir / "salesforce.db", **o.emulator_knobs)
        for name in ("webhook", "webhook_metrics", "poll_metrics", "sink_metrics"):
            self.ports[name] = free_port()
        for i in range(o.stream_workers):
            self.ports[f"stream{i}_metrics"] = free_port()
        for i in range(1, o.sink_instances):
            self.ports[f"sink{i}_metrics"] = free_port()
        on_step("starting the Stripe simulator")
        self.stripe = start_simulator(
            seed=o.seed, webhook_url=f"http://127.0.0.1:{self.ports['webhook']}/webhooks/stripe",
            webhook_secrets=list(WEBHOOK_SECRETS), clock="realtime", rate_limit=o.stripe_rate_limit,
            **o.simulator_knobs,
        )
        if o.visibility_max_delay_s:
            self.stripe.configure(visibility_max_delay_s=o.visibility_max_delay_s)
        self.env = {**os.environ, **self.component_env(), **o.extra_env}
        self.supervisor = Supervisor(o.workdir / "logs", base_env=self.env)
        on_step("starting the pipeline: webhook receiver, pollers, stream worker(s), sink")
        self.supervisor.add("webhook", ["webhook"])
        for i in range(o.stream_workers):
            self.supervisor.add(f"stream{i}", ["stream", "--data-dir", str(o.workdir / f"stream{i}"),
                                               "--metrics-port", str(self.ports[f"stream{i}_metrics"])])
        self.supervisor.add("sink", ["sink", "--metrics-port", str(self.ports["sink_metrics"])])
        for i in range(1, o.sink_instances):
            self.supervisor.add(f"sink{i}", ["sink", "--metrics-port", str(self.ports[f"sink{i}_metrics"])])
        self.wait_http(f"http://127.0.0.1:{self.ports['webhook']}/readyz", timeout=60)
        return self

    def component_env(self) -> dict[str, str]:
        """The `PAYSYNC_*` environment of every component, each name taken from the settings class that reads it
        (a renamed field fails here, at start, instead of leaving a component on its default)."""
        assert self.stripe is not None and self.sf is not None
        creds = DEFAULT_CREDENTIALS
        return {
            **settings_env(KafkaConnection, bootstrap_servers=self.bootstrap),
            **settings_env(TopicSettings, prefix=self.prefix, partitions=self.o.partitions),
            **settings_env(WebhookSettings, webhook_secrets=",".join(WEBHOOK_SECRETS),
                           webhook_port=self.ports["webhook"], webhook_metrics_port=self.ports["webhook_metrics"]),
            **settings_env(PollerSettings, stripe_api_key=self.stripe.api_key, stripe_api_base=self.stripe.base_url,
                           poll_interval_s=self.o.poll_interval_s, poll_initial_lookback_s=3 * 86400,
                           poller_metrics_port=self.ports["poll_metrics"],
                           **late_poller_settings(self.o.visibility_max_delay_s)),
            **settings_env(StreamSettings, stream_app_id="paysync-streams"),
            **settings_env(SalesforceSettings, salesforce_login_url=self.sf.base_url,
                           salesforce_auth_flow="client_credentials", salesforce_client_id=creds["client_id"],
                           salesforce_client_secret=creds["client_secret"], salesforce_ca_bundle=self.sf.ca_cert_path),
            **settings_env(SinkSettings, sink_group_id=self.sink_group()),
        }

    def drive(self, events: int, rate: float, timeout: float = 60.0, **params: Any) -> None:
        """Start simulated traffic, then the pollers (which must know the connected accounts to list)."""
        assert self.stripe is not None and self.supervisor is not None
        self.stripe.generate(wait=False, events=events, rate=rate, **params)
        deadline = time.monotonic() + timeout
        accounts: list[str] = []
        wanted = int(params.get("connected_accounts", 3))
        while len(accounts) < wanted and time.monotonic() < deadline:
            st = self.stripe.status()
            accounts = list(st.get("connected_accounts") or [])
            if not accounts and st.get("done") and st.get("runs"):
                break
            time.sleep(0.1)
        self.supervisor.add("poll", ["poll"], env=settings_env(PollerSettings, stripe_accounts=",".join(accounts)))

    def stop(self) -> None:
        """Stop components, emulators and the private broker."""
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.stripe is not None:
            self.stripe.stop()
        if self.sf is not None:
            self.sf.stop()
        if self.broker_cfg is not None:
            stop(self.broker_cfg)

    def stop_broker(self) -> None:
        """Stop the private broker (chaos); its data folder and ports are kept for `start_broker()`."""
        if self.broker_cfg is None:
            raise RuntimeError("the pipeline does not own its broker (it was given a bootstrap)")
        stop(self.broker_cfg)

    def start_broker(self, timeout: float = 90.0) -> None:
        """Start the private broker again on the same ports and data folder (its records survive)."""
        if self.broker_cfg is None:
            raise RuntimeError("the pipeline does not own its broker (it was given a bootstrap)")
        start(self.broker_cfg, fresh=False, timeout=timeout)

    def __enter__(self) -> "LocalPipeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # probes -------------------------------------------------------------------------------------

    def stripe_status(self) -> dict[str, Any]:
        """The simulator's status; notes when generation is first seen over (`generated_at`, for `listed_by`)."""
        assert self.stripe is not None
        st = self.stripe.status()
        if self.generated_at is None and st.get("runs") and not st.get("running"):
            self.generated_at = time.time()
        return st

    def listed_by(self) -> float:
        """The wall time by which the pollers have listed every entry, late ones included: the first sweep that
        starts a horizon after the newest `created` (<= `generated_at`) lists it (`producers.pollers.listing`),
        and sweeps start at a poll once `poll_sweep_every_s` has passed. Now, when the lists are not late."""
        if not self.o.visibility_max_delay_s:
            return time.time()
        settings = PollerSettings.model_fields

        def setting(name: str) -> float:
            return float(self.env.get(env_name(PollerSettings, name)) or settings[name].default)

        end = self.generated_at or time.time()
        return (end + setting("poll_visibility_horizon_s") + setting("poll_sweep_every_s")
                + 2 * setting("poll_interval_s"))

    @staticmethod
    def wait_http(url: str, timeout: float) -> None:
        """Wait until `url` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def end_offsets(self, topic_name: str) -> dict[int, int]:
        """High watermarks of every partition of a topic (retried while a restarted broker elects leaders)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"{self.prefix}probe"})

        def read() -> dict[int, int]:
            topic = consumer.list_topics(topic_name, timeout=10).topics[topic_name]
            if topic.error is not None:
                raise KafkaException(topic.error)
            return {p: consumer.get_watermark_offsets(TopicPartition(topic_name, p), timeout=10)[1]
                    for p in topic.partitions}

        try:
            return _retried(read)
        finally:
            consumer.close()

    def group_lag(self, group: str, topics: list[str]) -> int:
        """Records of `topics` not yet committed by consumer group `group` (uncommitted partitions count fully).

        Committed offsets are read with a consumer that never joins the group (`committed()`), not with the
        admin client, whose group-offsets call can crash the process on a young broker (confluent-kafka#1982).
        """
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            total = 0
            for topic_name in topics:
                ends = self.end_offsets(topic_name)
                committed = self._committed(consumer, [TopicPartition(topic_name, p) for p in ends])
                done = {tp.partition: tp.offset for tp in committed}
                for p, end in ends.items():
                    total += end - max(done.get(p, -1), 0)
            return total
        finally:
            consumer.close()

    @staticmethod
    def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """`consumer.committed(...)`, retried while the group coordinator is still being elected or loaded."""
        return _retried(lambda: list(consumer.committed(partitions, timeout=10)))

    def lags(self) -> dict[str, int]:
        """Lag of the streams (on both input topics) and of the sink."""
        return {
            "streams": self.group_lag(self.stream_group(),
                                      [self.topic(STRIPE_EVENTS.name), self.topic(STRIPE_BALANCE_TRANSACTIONS.name)]),
            "sink": self.group_lag(self.sink_group(), [self.topic(SALESFORCE_UPSERTS.name)]),
        }

    def sink_group(self) -> str:
        """The sink's consumer group: one per pipeline, so pipelines sharing a cluster never share a group."""
        return f"{self.prefix}paysync-sink"

    def stream_group(self) -> str:
        """The streams' consumer group (Faust: the app id, with the topic prefix as the streams apply it)."""
        return f"{self.prefix}paysync-streams"

    def dead_letters(self) -> int:
        """Records in the dead-letter topic."""
        return sum(self.end_offsets(self.topic(DEAD_LETTERS.name)).values())

    def events_in(self) -> int:
        """Records in stripe.events (every accepted webhook, poll and backfill record)."""
        return sum(self.end_offsets(self.topic(STRIPE_EVENTS.name)).values())

    def salesforce_session(self) -> tuple[requests.Session, str, str]:
        """(session, access token, instance URL) logged in to the pipeline's Salesforce emulator."""
        session = requests.Session()
        session.verify = str(self.sf.ca_cert_path)
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        resp = session.post(f"{self.sf.base_url}/services/oauth2/token", data={
            "grant_type": "client_credentials",
            "client_id": self.env[env_name(SalesforceSettings, "salesforce_client_id")],
            "client_secret": self.env[env_name(SalesforceSettings, "salesforce_client_secret")]}, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        return session, str(body["access_token"]), str(body["instance_url"])

    def salesforce_reader(self) -> SalesforceReader:
        """A SOQL reader on the emulator that logs in again when its session expires."""
        session, token, instance = self.salesforce_session()

        def relogin() -> tuple[str, str]:
            _, fresh, url = self.salesforce_session()
            return fresh, url

        return SalesforceReader(session, lambda: (token, instance), relogin=relogin)
