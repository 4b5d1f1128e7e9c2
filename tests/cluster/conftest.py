"""A private 3-node KRaft cluster on free ports for the cluster tests (one per session), stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.kafka_cluster import ClusterConfig, start_cluster, stop_cluster
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
