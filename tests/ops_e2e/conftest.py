"""One whole pipeline (broker from the session, both emulators, every component) shared by this folder."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ops.demo import settle, wait_horizon
from ops.pipeline import LATE_VISIBILITY_S, LocalPipeline, PipelineOptions


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    workdir: Path = tmp_path_factory.mktemp("pipeline")
    p = LocalPipeline(PipelineOptions(
        workdir=workdir, bootstrap=kafka_bootstrap, partitions=3, seed=11, poll_interval_s=2.0,
        simulator_knobs={"duplicate_rate": 0.1, "drop_rate": 0.05, "reorder_window": 1.0, "tie_rate": 0.2},
        visibility_max_delay_s=LATE_VISIBILITY_S,  # lists late as in a real account (issue 15); webhooks are not
    ))
    p.start()
    try:
        p.drive(400, 400, delay_scale=0.001)
        t0 = time.monotonic()
        assert settle(p, t0, timeout=180, quiet_for=4.0), "the pipeline did not settle"
        assert wait_horizon(p, t0, timeout=180), "the pipeline did not settle after the visibility horizon"
        yield p
    finally:
        p.stop()


def salesforce_session(p: LocalPipeline) -> tuple[requests.Session, str, str]:
    """(session, access token, instance URL) logged in to the pipeline's Salesforce emulator."""
    return p.salesforce_session()


def wait_sink_idle(p: LocalPipeline, timeout: float = 60.0) -> None:
    """Until the sink has committed everything on its topic (twice in a row, a second apart)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if p.lags()["sink"] == 0 else 0
        if quiet >= 3:
            return
        time.sleep(0.5)
    raise AssertionError("the sink did not catch up")


# `stripe_rules` (beside this file: the rules restated for the end-to-end comparison) importable by this folder's
# tests under --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).resolve().parent))
