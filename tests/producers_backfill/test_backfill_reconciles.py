"""`paysync backfill` of a simulator history older than the Events API window, into Kafka topics of its own,
then the stream worker and the sink into the Salesforce emulator: `paysync reconcile` is CLEAN, and the old
customers are real Accounts (named as in Stripe), not stubs (issue 19 point 7).

No webhook receiver and no poller run: whatever reaches Salesforce came through the backfill.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import registry
from emulators.salesforce_emulator import start_emulator
from emulators.stripe_simulator.handle import start_simulator
from ops.demo import settle
from ops.pipeline import LocalPipeline, PipelineOptions
from ops.supervisor import Supervisor
from paysync.net import free_port
from paysync.topics import ALL_TOPICS, create_topics, wait_for_topics

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
HISTORY_AGE_S = 60 * 86400  # older than the Events API's 30 days: only the object lists can bring it
# The simulator as realistic as it is by default (manual and instant payouts, deleted drafts, reconciliations
# completing after payout.paid …), and a history of automatic payouts only.
KNOBS = [
    pytest.param({}, id="realistic"),
    pytest.param({"manual_payout_rate": 0.0, "draft_delete_rate": 0.0}, id="automatic-payouts"),
]


def _not_backfilled() -> list[str]:
    """Registry types with a mapper (so reconcile expects them) that `paysync backfill` does not list."""
    listed = {spec.name for spec in registry.backfill_types()}
    return sorted(spec.name for spec in registry.event_types() if spec.name not in listed)


class BackfillPipeline(LocalPipeline):
    """`LocalPipeline` with a simulator history in the past and only the stream worker and the sink running."""

    def start(self, on_step: Any = lambda s: None) -> BackfillPipeline:
        o = self.o
        o.workdir.mkdir(parents=True, exist_ok=True)
        conf: dict[str, object] = {"bootstrap.servers": self.bootstrap}
        create_topics(conf, self.prefix, o.partitions)
        missing = wait_for_topics(conf, [t.full_name(self.prefix) for t in ALL_TOPICS], timeout=120)
        assert not missing, missing
        self.sf = start_emulator(o.workdir / "salesforce.db", **o.emulator_knobs)
        self.ports = {name: free_port() for name in ("webhook", "webhook_metrics", "poll_metrics", "sink_metrics",
                                                      "stream0_metrics")}
        self.stripe = start_simulator(seed=o.seed, clock="fixed", start_time=int(time.time()) - HISTORY_AGE_S,
                                      **o.simulator_knobs)
        self.env = {**os.environ, **self.component_env(), **o.extra_env}
        self.supervisor = Supervisor(o.workdir / "logs", base_env=self.env)
        return self

    def run_components(self) -> None:
        assert self.supervisor is not None
        self.supervisor.add("stream0", ["stream", "--data-dir", str(self.o.workdir / "stream0"),
                                        "--metrics-port", str(self.ports["stream0_metrics"])])
        self.supervisor.add("sink", ["sink", "--metrics-port", str(self.ports["sink_metrics"])])


def _cli(p: LocalPipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**p.env, "PAYSYNC_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(params=KNOBS)
def pipeline(request: pytest.FixtureRequest, kafka_bootstrap: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackfillPipeline]:
    workdir: Path = tmp_path_factory.mktemp("backfill")
    p = BackfillPipeline(PipelineOptions(workdir=workdir, bootstrap=kafka_bootstrap, partitions=3, seed=5,
                                        simulator_knobs=dict(request.param)))
    p.start()
    try:
        yield p
    finally:
        p.stop()


def test_a_backfilled_history_reconciles_clean_with_real_accounts(pipeline: BackfillPipeline) -> None:
    p = pipeline
    assert p.stripe is not None
    status = p.stripe.generate(events=300)
    since = str(int(time.time()) - HISTORY_AGE_S - 86400)
    for account in [None, *status["connected_accounts"]]:
        args = ["backfill", "--since", since, "--no-progress", *(["--account", account] if account else [])]
        first = _cli(p, *args)
        assert first.returncode == 0, first.stderr
        again = _cli(p, *args)  # resumable: a complete run publishes nothing more
        assert again.returncode == 0 and "published 0 records" in again.stderr, again.stderr
    p.run_components()
    assert settle(p, time.monotonic(), timeout=240, quiet_for=4.0), "the pipeline did not settle"

    truth = p.stripe.truth()
    customers = {line["object"]["id"]: line["object"] for line in truth
                 if line.get("kind") == "object" and line.get("type") == "customer"}
    assert customers
    reader = p.salesforce_reader()
    accounts = {r["Stripe_Customer_Id__c"]: r for r in reader.query(
        "SELECT Name, Stripe_Customer_Id__c FROM Account WHERE Stripe_Customer_Id__c != null")}
    assert set(accounts) == set(customers)
    for cid, customer in customers.items():  # a stub Account is named after its external id
        assert accounts[cid]["Name"] == (customer.get("name") or cid)
    assert sum(1 for c in customers.values() if c.get("name")) > 0

    out = _cli(p, "reconcile", "--simulator", p.stripe.base_url, "--json")
    assert out.stdout, out.stderr
    report = json.loads(out.stdout)
    drifts = [d for k, v in report.items() if k != "summary" and isinstance(v, list) for d in v
              if isinstance(d, dict) and "kind" in d]
    assert not _not_backfilled(), "every registry type with a list endpoint is backfilled"
    assert out.returncode == 0, json.dumps({"summary": report.get("summary"), "drifts": drifts[:8]},
                                           indent=1, default=str)[:6000]
    assert report["summary"]["clean"]
