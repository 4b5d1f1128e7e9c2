"""Every Kafka topic paysync uses, declared once: name, key, value schema, partitions, retention.

The data topics share one partition count so that `stripe.events` and `stripe.balance_transactions`
are co-partitioned (a charge and its balance transaction, both keyed by the charge id, meet in the
same partition). Faust's own changelog and repartition topics are created by Faust.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    """One topic's contract. `schema` names the Avro schema of its values (see `schemas/`)."""

    name: str
    key: str
    schema: str
    compacted: bool = False
    retention_ms: int = -1
    partitions: int | None = None  # None = the configured data-topic partition count
    config: dict[str, str] = field(default_factory=dict)

    def full_name(self, prefix: str = "") -> str:
        """The topic name with the deployment's prefix."""
        return f"{prefix}{self.name}"

    def broker_config(self) -> dict[str, str]:
        """Topic-level broker settings (cleanup policy, retention) for `create_topics`."""
        conf = {"cleanup.policy": "compact" if self.compacted else "delete", "retention.ms": str(self.retention_ms)}
        conf.update(self.config)
        return conf


STRIPE_EVENTS = Topic(
    name="stripe.events",
    key="the Stripe object's id (a refund, dispute or balance transaction: its charge's id)",
    schema="paysync.StripeEventEnvelope",
    retention_ms=35 * DAY_MS,
)
STRIPE_BALANCE_TRANSACTIONS = Topic(
    name="stripe.balance_transactions",
    key="the transaction's source id (charge, refund, dispute …), else its own id",
    schema="paysync.StripeBalanceTransaction",
    retention_ms=35 * DAY_MS,
)
SALESFORCE_UPSERTS = Topic(
    name="salesforce.upserts",
    key="<SObject>:<external id>",
    schema="paysync.SalesforceUpsert",
    retention_ms=14 * DAY_MS,
)
DEAD_LETTERS = Topic(
    name="paysync.dlq",
    key="the original record's key",
    schema="paysync.DeadLetter",
    retention_ms=-1,
    partitions=3,
)
CURSORS = Topic(
    name="paysync.cursors",
    key="poller name",
    schema="paysync.PollerCursor",
    compacted=True,
    partitions=1,
    config={"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(3600 * 1000)},
)

ALL_TOPICS: tuple[Topic, ...] = (
    STRIPE_EVENTS,
    STRIPE_BALANCE_TRANSACTIONS,
    SALESFORCE_UPSERTS,
    DEAD_LETTERS,
    CURSORS,
)


def _create_missing(conf: Mapping[str, Any], specs: list[tuple[str, int, dict[str, str]]],
                    timeout: float) -> list[str]:
    """Create each `(name, partitions, config)` whose topic does not exist yet; returns the names created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient(dict(conf))
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config)
              for name, partitions, config in specs if name not in existing]
    if not wanted:
        return []
    created: list[str] = []
    for name, fut in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            fut.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return created


def create_topics(conf: Mapping[str, Any], prefix: str = "", partitions: int = 6, timeout: float = 30.0) -> list[str]:
    """Create every declared topic that does not exist yet; returns the names created (idempotent)."""
    return _create_missing(
        conf, [(t.full_name(prefix), t.partitions or partitions, t.broker_config()) for t in ALL_TOPICS], timeout)


def ensure_topics(conf: Mapping[str, Any], names: Sequence[str], partitions: int, timeout: float = 30.0,
                  compact: bool = False) -> list[str]:
    """Create the topics in `names` that do not exist (delete policy, or compacted); returns those created."""
    config = {"cleanup.policy": "compact"} if compact else {}
    return _create_missing(conf, [(n, partitions, config) for n in names], timeout)


def wait_for_topics(conf: Mapping[str, Any], names: list[str], timeout: float = 30.0) -> list[str]:
    """Wait until every topic in `names` is in the cluster's metadata with a leader for each partition.

    Returns the names still missing or leaderless when `timeout` runs out (empty: all ready). A topic that
    was just created can be missing from a fresh client's first metadata for a moment, and a consumer group
    member that joins then is assigned none of its partitions.
    """
    import time

    from confluent_kafka.admin import AdminClient

    admin = AdminClient(dict(conf))
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=max(1.0, deadline - time.monotonic())).topics
        missing = [n for n in names if n not in topics or topics[n].error is not None or not topics[n].partitions
                   or any(p.leader < 0 for p in topics[n].partitions.values())]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.2)

