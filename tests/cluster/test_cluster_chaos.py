"""Chaos on a 3-node cluster at reduced size: the leader of the busiest partition SIGKILLed mid-stream, one node
down then back (catch-up), and a rolling restart of all three nodes, in one run under load. The receiver keeps
answering 2xx through the elections (the longest non-2xx window is bounded and printed), no acknowledged webhook is
lost, and the run ends reconciled with every payout Reconciled."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.chaos.cluster import cluster_plan, run_on_cluster
from ops.chaos.runner import RunConfig
from ops.kafka_cluster import ClusterConfig, cluster_status, under_replicated

pytestmark = pytest.mark.slow

EVENTS = 600
RATE = 12.0  # a 50 s traffic window: the three node faults fire inside it, one after another


def test_leader_killed_node_down_and_rolling_restart_under_load(tmp_path: Path, cluster: ClusterConfig) -> None:
    names = ["cluster-kill-leader", "cluster-node-down", "cluster-rolling-restart"]
    cfg = RunConfig(events=EVENTS, rate=RATE, seed=3, workdir=tmp_path / "chaos", settle_timeout_s=240, converge_s=60)
    result = run_on_cluster(cluster_plan(names, EVENTS, RATE, seed=3, node_down_s=8.0), cfg, cluster, print)
    print(result.line())
    assert result.passed, result.violations
    faults, details = result.faults, result.details
    assert faults["node-kills"] == 1 and faults["node-outages"] == 1 and faults["node-restarts"] == 3
    assert details["salesforce_records"] == details["expected_records"] > 100
    assert details["payouts"] == details["payouts_reconciled"] + details["payouts_manual"]
    assert details["payouts_reconciled"] > 0
    assert faults["webhooks-acknowledged"] > 100
    # the receiver answers 2xx again soon after a leader's SIGKILL: within the controller's fencing (6 s) plus one
    # publish deadline (5 s) and the election
    assert faults["longest-non-2xx-window-s"] < 20, faults
    assert all(s.running for s in cluster_status(cluster)) and under_replicated(cluster.bootstrap) == []
