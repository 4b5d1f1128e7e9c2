"""Every component checks its topics' replication at start-up: on a 3-broker cluster, paysync topics replicated once
are a clear error (exit 2, the topic names and the fix), never a silent risk; topics replicated as required pass."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from ops.kafka_cluster import ClusterConfig
from paysync.settings import KafkaConnection, TopicSettings, settings_env
from paysync.topics import create_topics, paysync_topic_names
from producers.pollers.settings import PollerSettings
from producers.webhook.settings import WebhookSettings
from sinks.settings import SalesforceSettings

pytestmark = pytest.mark.slow

COMMANDS = {
    "webhook": (["webhook"], settings_env(WebhookSettings, webhook_secrets="whsec_test", webhook_metrics_port=0)),
    "poll": (["poll"], settings_env(PollerSettings, stripe_api_key="sk_test_x", stripe_api_base="http://127.0.0.1:9")),
    "stream": (["stream", "--data-dir", "{tmp}/stream", "--no-create-topics"], {}),
    "sink": (["sink"], settings_env(SalesforceSettings, salesforce_login_url="https://example.my.salesforce.com",
                                    salesforce_auth_flow="client_credentials", salesforce_client_id="id",
                                    salesforce_client_secret="secret")),
}


def _served_by_every_node(cluster: ClusterConfig, names: list[str], timeout: float = 30.0) -> None:
    """Return once every node's own metadata lists `names`: a topic created a moment ago reaches the brokers one
    after another, and the start-up check asking a broker that does not list it yet skips it (missing topics are
    not its business), so the component would start and run instead of exiting 2."""
    for port in cluster.ports:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        deadline = time.monotonic() + timeout
        while not all(n in admin.list_topics(timeout=10).topics for n in names):
            assert time.monotonic() < deadline, f"node on {port} does not serve {names} after {timeout:.0f} s"
            time.sleep(0.1)


@pytest.mark.parametrize("component", list(COMMANDS))
def test_a_component_refuses_topics_replicated_once(component: str, healthy_cluster: ClusterConfig,
                                                    tmp_path: object) -> None:
    cluster = healthy_cluster  # every node up and in sync: the chaos test before restarts nodes
    prefix = f"r{uuid.uuid4().hex[:8]}."
    conf = {"bootstrap.servers": cluster.bootstrap}
    create_topics(conf, prefix, partitions=1, replication_factor=1, min_insync_replicas=1)
    _served_by_every_node(cluster, paysync_topic_names(prefix))
    args, extra = COMMANDS[component]
    env = {**os.environ, **settings_env(KafkaConnection, bootstrap_servers=cluster.bootstrap),
           **settings_env(TopicSettings, prefix=prefix, partitions=1), **extra}
    try:  # the check has one deadline of 15 s; a component that skipped it would run until killed
        proc = subprocess.run([sys.executable, "-m", "ops.cli", *[a.format(tmp=tmp_path) for a in args]],
                              capture_output=True, text=True, env=env, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{component} still running after 120 s: {_text(exc.stdout) + _text(exc.stderr)}"[-3000:])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-2000:]
    for name in paysync_topic_names(prefix):
        assert f"{name} has replication factor 1, not 3" in output, output[-2000:]
    assert "PAYSYNC_TOPIC_REPLICATION_FACTOR" in output and "kafka-reassign-partitions" in output
    if component == "stream":  # its own topics (changelogs, payout join) were created with the cluster's rule
        md = AdminClient(conf).list_topics(timeout=10).topics
        own = [t for t in md if t.startswith(prefix) and t not in paysync_topic_names(prefix)]
        assert own and all({len(p.replicas) for p in md[t].partitions.values()} == {3} for t in own), own


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""
