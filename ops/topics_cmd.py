"""`paysync topics create | list`: the declared topics, created idempotently."""

from __future__ import annotations

import argparse

from paysync.settings import KafkaConnection, TopicSettings
from paysync.topics import ALL_TOPICS, create_topics


def main(argv: list[str]) -> int:
    """Create (or list) every topic declared in `paysync.topics`."""
    p = argparse.ArgumentParser(prog="paysync topics")
    p.add_argument("action", choices=["create", "list"])
    args = p.parse_args(argv)
    topics = TopicSettings()
    if args.action == "list":
        for t in ALL_TOPICS:
            kind = "compacted" if t.compacted else f"retention {t.retention_ms} ms"
            print(f"{t.full_name(topics.prefix):32} key={t.key}; value={t.schema}; {kind}")
        return 0
    created = create_topics(KafkaConnection().confluent_config(), topics.prefix, topics.partitions,
                            replication_factor=topics.replication_factor, min_insync_replicas=topics.min_insync_replicas)
    print(f"created {len(created)} topic(s): {', '.join(created) or 'none (all existed)'}")
    return 0
