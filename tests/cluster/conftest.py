"""A private 3-node KRaft cluster on free ports for the cluster tests (one per session), stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.kafka_cluster import ClusterConfig, start_cluster, stop_cluster, wait_in_sync
from paysync.net import free_port


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterConfig]:
    """Three combined broker+controller nodes (RF 3, min ISR 2 on internal topics), all in the metadata."""
    cfg = ClusterConfig(tuple(free_port() for _ in range(3)), tuple(free_port() for _ in range(3)),
                        data_dir=tmp_path_factory.mktemp("cluster"))
    start_cluster(cfg, fresh=True, timeout=180)
    try:
        yield cfg
    finally:
        stop_cluster(cfg)


@pytest.fixture
def healthy_cluster(cluster: ClusterConfig) -> ClusterConfig:
    """The session's cluster with every node running and every partition's ISR full. A test before may have left
    it recovering (test_cluster_chaos kills and restarts nodes; a failed run may leave one down or catching up):
    any node not running is started, then the ISRs are waited for, so the test begins on a whole cluster."""
    start_cluster(cluster, timeout=120)  # starts only the nodes not running; at once when all run
    behind = wait_in_sync(cluster.bootstrap, 120)
    assert behind == [], f"the cluster is not back in sync after 120 s: {behind[:5]}"
    return cluster

