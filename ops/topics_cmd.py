"""`paysync topics create | list`: the declared topics, created idempotently."""

from __future__ import annotations

import argparse

from paysync.settings import KafkaSettings
from paysync.topics import ALL_TOPICS, create_topics


def main(argv: list[str]) -> int:
    """Create (or list) every topic declared in `paysync.topics`."""
    p = argparse.ArgumentParser(prog="paysync topics")
    p.add_argument("action", choices=["create", "list"])
    args = p.parse_args(argv)
    settings = KafkaSettings()
    if args.action == "list":
        for t in ALL_TOPICS:
            kind = "compacted" if t.compacted else f"retention {t.retention_ms} ms"
            print(f"{t.full_name(settings.topic_prefix):32} key={t.key}; value={t.schema}; {kind}")
        return 0
    created = create_topics(settings.confluent_config(), settings.topic_prefix, settings.topic_partitions)
    print(f"created {len(created)} topic(s): {', '.join(created) or 'none (all existed)'}")
    return 0
