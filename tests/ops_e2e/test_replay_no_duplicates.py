"""Replaying the sink's topic from an offset re-drives that range through the idempotent path: no duplicate in Salesforce."""

from __future__ import annotations

import subprocess
import sys

from ops.pipeline import LocalPipeline
from paysync.topics import SALESFORCE_UPSERTS

from .conftest import wait_sink_idle
from .test_reconcile_repair import reconcile_cli, soql

OBJECTS = ("Account", "Stripe_Payment__c", "Stripe_Payout__c", "Stripe_Balance_Transaction__c")


def counts(p: LocalPipeline) -> dict[str, int]:
    return {o: len(soql(p, f"SELECT Id FROM {o}")) for o in OBJECTS}


def test_replay_from_offset_zero_changes_nothing_in_salesforce(pipeline: LocalPipeline) -> None:
    wait_sink_idle(pipeline)
    before = counts(pipeline)
    topic = SALESFORCE_UPSERTS.name
    ends = pipeline.end_offsets(pipeline.topic(topic))
    dry = subprocess.run([sys.executable, "-m", "ops.cli", "replay", topic, "--from-earliest", "--dry-run"],
                         env=pipeline.env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert pipeline.end_offsets(pipeline.topic(topic)) == ends  # a dry run moves nothing
    run = subprocess.run([sys.executable, "-m", "ops.cli", "replay", topic, "--from-earliest"],
                         env=pipeline.env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    after_ends = pipeline.end_offsets(pipeline.topic(topic))
    assert sum(after_ends.values()) == 2 * sum(ends.values())  # exactly the range, once more
    wait_sink_idle(pipeline)
    assert counts(pipeline) == before
    status, report = reconcile_cli(pipeline)
    assert status == 0, report["drifts"][:5]
