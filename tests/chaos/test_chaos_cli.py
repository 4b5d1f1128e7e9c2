"""`paysync chaos` parses and dispatches every scenario, the cluster ones included, to fake runners (no pipeline, no
broker): which runs it makes, with which sizes and rates, on which cluster, and what it prints and returns."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import ops.chaos
from ops import cli
from ops.chaos import CLUSTER_RATE, CLUSTER_SCENARIOS, LOCAL_RATE, SCENARIOS, Runners, main, runs_for
from ops.chaos.cluster import ClusterRun
from ops.chaos.runner import RunConfig, RunResult
from ops.chaos.scenarios import Plan

CLUSTER_FAULTS = {"node-kills": 1, "killed": ["node 2 (leader of p1.stripe.events/0)"], "kill-catch-up-s": 9.1,
                  "deliveries": 600, "webhook-non-2xx": 3, "longest-non-2xx-window-s": 4.6,
                  "longest-window-answers": 3, "webhooks-acknowledged": 598}


@dataclass
class Fakes:
    """Records every run and cluster session; the results pass unless `fail` names the run."""

    fail: set[str] = field(default_factory=set)
    local_runs: list[tuple[Plan, RunConfig]] = field(default_factory=list)
    cluster_runs: list[tuple[Plan, RunConfig]] = field(default_factory=list)
    sessions: list[tuple[Path, float]] = field(default_factory=list)
    open_sessions: int = 0

    def _result(self, plan: Plan, cfg: RunConfig, faults: dict[str, object]) -> RunResult:
        name = "+".join(plan.names)
        return RunResult(plan.names, cfg.events, faults=dict(faults), settle_s=12.5, details={
            "salesforce_records": 300, "expected_records": 300, "payouts": 9, "payouts_reconciled": 8,
            "payouts_manual": 1}, violations=["reconcile found drift"] if name in self.fail else [])

    def local(self, plan: Plan, cfg: RunConfig, say: object) -> RunResult:
        self.local_runs.append((plan, cfg))
        return self._result(plan, cfg, {"poison": 7})

    @contextmanager
    def cluster(self, data_dir: Path, catch_up_s: float) -> Iterator[ClusterRun]:
        self.sessions.append((data_dir, catch_up_s))
        self.open_sessions += 1

        def on_cluster(plan: Plan, cfg: RunConfig, say: object) -> RunResult:
            assert self.open_sessions == 1, "a cluster run outside its cluster session"
            self.cluster_runs.append((plan, cfg))
            return self._result(plan, cfg, CLUSTER_FAULTS)
        try:
            yield on_cluster
        finally:
            self.open_sessions -= 1

    def runners(self) -> Runners:
        return Runners(local=self.local, cluster=self.cluster)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.mark.parametrize("name", list(CLUSTER_SCENARIOS))
def test_each_cluster_scenario_runs_alone_on_a_private_cluster(name: str, fakes: Fakes, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    status = main([name, "--workdir", str(tmp_path), "--events", "600", "--seed", "3"], fakes.runners())
    out = capsys.readouterr().out
    assert status == 0 and fakes.local_runs == []
    assert fakes.sessions == [(tmp_path / "cluster" / "kafka", 90.0)] and fakes.open_sessions == 0
    [(plan, cfg)] = fakes.cluster_runs
    assert plan.names == [name] and [a.kind for a in plan.actions] == ["cluster-record", name]
    assert (cfg.events, cfg.rate, cfg.seed, cfg.workdir) == (600, CLUSTER_RATE, 3, tmp_path / "cluster" / "run")
    assert f"{name}: events 600 · faults " in out and "· PASS" in out
    figures = next(line for line in out.splitlines() if line.startswith("  figures: "))
    for figure in ("longest non-2xx window 4.60 s (3 answer(s); 3 of 600 deliveries non-2xx)", "settle 12.5 s",
                   "events 600", "node kills 1 (node 2 (leader of p1.stripe.events/0))",
                   "catch-up (longest) kill 9.1 s", "webhooks acknowledged 598", "payouts 8 Reconciled + 1 manual of 9"):
        assert figure in figures, figures


def test_cluster_all_is_one_run_of_the_three_and_sizes_rates_and_durations_are_flags(fakes: Fakes,
                                                                                      tmp_path: Path) -> None:
    status = main(["cluster-all", "--workdir", str(tmp_path), "--events", "900", "--rate", "15", "--node-down-s", "7",
                   "--kill-back-s", "2", "--catch-up-s", "40", "--timeout", "300"], fakes.runners())
    assert status == 0 and fakes.sessions == [(tmp_path / "cluster" / "kafka", 40.0)]
    [(plan, cfg)] = fakes.cluster_runs
    assert plan.names == list(CLUSTER_SCENARIOS)
    durations = {a.kind: a.duration for a in plan.actions}
    assert durations["cluster-node-down"] == 7.0 and durations["cluster-kill-leader"] == 2.0
    assert (cfg.events, cfg.rate, cfg.settle_timeout_s) == (900, 15.0, 300.0)
    assert all(0 <= a.at <= 900 / 15 for a in plan.actions)


def test_several_cluster_scenarios_share_one_cluster_after_the_one_broker_runs(fakes: Fakes, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    status = main(["cluster-node-down", "poison", "cluster-kill-leader", "--workdir", str(tmp_path)], fakes.runners())
    assert status == 0 and len(fakes.sessions) == 1
    assert [p.names for p, _ in fakes.cluster_runs] == [["cluster-kill-leader"], ["cluster-node-down"]]
    [(local, cfg)] = fakes.local_runs
    assert local.names == ["poison"] and (cfg.rate, cfg.bootstrap, cfg.workdir) == (LOCAL_RATE, "127.0.0.1:1", tmp_path)
    assert all(c.bootstrap is None for _, c in fakes.cluster_runs)  # the private cluster's, set by run_on_cluster
    assert runs_for(["cluster-node-down", "poison"], together=False) == [(["poison"], False),
                                                                          (["cluster-node-down"], True)]


def test_one_broker_scenarios_never_start_a_cluster(fakes: Fakes, tmp_path: Path) -> None:
    assert main(["all", "--workdir", str(tmp_path)], fakes.runners()) == 0
    assert fakes.sessions == [] and [p.names for p, _ in fakes.local_runs] == [list(SCENARIOS)]


def test_a_failed_cluster_run_fails_the_command_and_json_carries_the_figures(fakes: Fakes, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    fakes.fail = {"cluster-rolling-restart"}
    status = main(["cluster-rolling-restart", "cluster-node-down", "--json", "--workdir", str(tmp_path)],
                  fakes.runners())
    runs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1 and [(r["names"], r["passed"]) for r in runs] == [
        (["cluster-node-down"], True), (["cluster-rolling-restart"], False)]
    assert runs[1]["violations"] == ["reconcile found drift"]
    assert runs[0]["faults"]["longest-non-2xx-window-s"] == 4.6


def test_unknown_names_and_a_together_across_both_families_are_refused(fakes: Fakes,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster-everything"], fakes.runners()) == 2
    assert "unknown scenario(s): cluster-everything" in capsys.readouterr().err
    assert main(["--together", "cluster-all", "poison"], fakes.runners()) == 2
    assert "--together cannot join cluster scenarios with one-broker ones" in capsys.readouterr().err
    assert fakes.sessions == [] and fakes.local_runs == []


def test_paysync_chaos_offers_and_dispatches_the_cluster_scenarios(fakes: Fakes, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ops.chaos, "Runners", fakes.runners)  # what `paysync chaos` builds when nothing is injected
    assert cli.main(["chaos", "cluster-kill-leader", "--events", "50", "--workdir", str(tmp_path)]) == 0
    assert [p.names for p, _ in fakes.cluster_runs] == [["cluster-kill-leader"]]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["chaos", "--help"])
    help_text = capsys.readouterr().out
    assert exit_.value.code == 0
    for option in (*CLUSTER_SCENARIOS, "cluster-all", "--node-down-s", "--kill-back-s", "--catch-up-s"):
        assert option in help_text


def test_the_figures_say_so_when_the_recorder_never_started() -> None:
    from ops.chaos.cluster import figures_line

    line = figures_line(RunResult(["cluster-node-down"], 40, settle_s=3.0, violations=["the delivery recorder never "
                                                                                        "started"]))
    assert line == ("  figures: longest non-2xx window not measured · settle 3.0 s · events 40 · node kills 0 · "
                    "node outages 0 · node restarts 0")
