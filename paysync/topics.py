"""Every Kafka topic paysync uses, declared once: name, key, value schema, partitions, retention.

The data topics share one partition count so that `stripe.events` and `stripe.balance_transactions`
are co-partitioned (a charge and its balance transaction, both keyed by the charge id, meet in the
same partition). Faust's own changelog and repartition topics are created by Faust.

Replication is explicit: every topic is created with a resolved replication factor and `min.insync.replicas`
(`resolve_replication`: the settings, else 3 and 2 on a cluster of three or more brokers, 1 and 1 on a one-node
broker), and every component checks at start-up (`check_replication`) that the topics it uses, and the consumer
offsets, are replicated so; a mismatch is a `ReplicationError` naming the topics and the fix.
"""

from __future__ import annotations

import logging
import time

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


OFFSETS_TOPIC = "__consumer_offsets"
# client-side errors of a cluster in flux (a broker handle dropped while metadata differ, a connection reset)
_TRANSIENT = frozenset({-137, -195, -185})  # _DESTROY_BROKER, _TRANSPORT, _TIMED_OUT
_MIN_CALL_S = 0.05  # the least time one admin call of a deadline is given (past the deadline: one last try)
_GRACE = 1.0  # a future is waited for this much past its request's timeout: librdkafka's own error comes first


@dataclass(frozen=True)
class ReplicationProblem:
    """One mismatch of the start-up check, tagged by the topic it is about (None: about no one topic, e.g. settings
    that contradict each other). `detail` says what is wrong without naming the topic; `text` is the whole sentence
    of the error message, the topic named by `subject` (default: its name)."""

    topic: str | None
    detail: str
    subject: str = ""

    @property
    def text(self) -> str:
        """The problem as `ReplicationError`'s message words it: "<topic> has <detail>" (no topic: the detail)."""
        return self.detail if self.topic is None else f"{self.subject or self.topic} has {self.detail}"


class ReplicationError(Exception):
    """Topics are not replicated as the settings require; the message names them and the fix (`FIX`). `tagged` holds
    each problem with the topic it is about (`by_topic`: by topic), `problems` their texts as the message has them."""

    FIX = ("raise the replication with kafka-reassign-partitions and set min.insync.replicas with kafka-configs (or "
           "recreate the topics), or set PAYSYNC_TOPIC_REPLICATION_FACTOR / PAYSYNC_TOPIC_MIN_INSYNC_REPLICAS to what "
           "the cluster is meant to run")

    def __init__(self, problems: Sequence[ReplicationProblem], expected: "Replication") -> None:
        self.tagged = tuple(problems)
        super().__init__(
            f"{len(problems)} topic(s) not replicated as required (replication factor {expected.factor}, "
            f"min.insync.replicas {expected.min_insync}): {'; '.join(self.problems)}. Fix: {self.FIX}")

    @property
    def problems(self) -> list[str]:
        """Every problem's text, in order (as the message words them)."""
        return [p.text for p in self.tagged]

    @property
    def by_topic(self) -> dict[str | None, list[ReplicationProblem]]:
        """The problems by the topic they are about, in order; key None: the problems about no one topic."""
        out: dict[str | None, list[ReplicationProblem]] = {}
        for p in self.tagged:
            out.setdefault(p.topic, []).append(p)
        return out


@dataclass(frozen=True)
class Replication:
    """The replication every paysync topic is created with and checked against."""

    factor: int
    min_insync: int
    brokers: int


def resolve_replication(conf: Mapping[str, Any], factor: int | None = None, min_insync: int | None = None,
                        timeout: float = 30.0, admin: Any = None) -> Replication:
    """The replication for this cluster: the given settings, else 3 and 2 on a cluster of three brokers or more,
    1 and 1 on one broker. "Three or more" is the most of: the live brokers (capped at 3), the brokers'
    `default.replication.factor`, and the consumer offsets' replication (capped at 3) — so a cluster with one
    node down (it is not in the metadata) still resolves to 3. ReplicationError when min.insync exceeds the factor.
    """
    return _resolve(admin if admin is not None else _admin(conf), factor, min_insync, time.monotonic() + timeout)


def _resolve(admin: Any, factor: int | None, min_insync: int | None, deadline: float) -> Replication:
    """`resolve_replication` with every admin call bounded by `deadline` (a `time.monotonic()` instant)."""
    md = _metadata(admin, deadline)
    brokers = len(md.brokers)
    if factor is None:
        offsets = md.topics.get(OFFSETS_TOPIC)
        offsets_rf = max((len(p.replicas) for p in offsets.partitions.values()), default=1) if offsets else 1
        factor = max(1, min(3, brokers), min(3, offsets_rf), _default_replication(admin, md, deadline))
    isr = min_insync if min_insync is not None else (2 if factor >= 3 else 1)
    wanted = Replication(factor, isr, brokers)
    if isr > factor:
        above = ReplicationProblem(None, f"min.insync.replicas {isr} is above the replication factor {factor}")
        raise ReplicationError([above], wanted)
    return wanted


def _default_replication(admin: Any, md: Any, deadline: float) -> int:
    """A broker's `default.replication.factor` (1 when it cannot be read by `deadline`, e.g. no DescribeConfigs ACL).

    The broker asked is the one that answered the metadata `md` a moment ago: any other listed broker may be a node
    killed or restarting that the controller has not fenced yet, and a request to it waits until the deadline."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]  # exported, not in __all__

    if not md.brokers:
        return 1
    broker = md.orig_broker_id if md.orig_broker_id in md.brokers else min(md.brokers)
    try:
        resource = ConfigResource(ConfigResource.Type.BROKER, str(broker))
        futures = admin.describe_configs([resource], request_timeout=_left(deadline))
        configs = futures[resource].result(_left(deadline) + _GRACE)
        return int(configs["default.replication.factor"].value)
    except Exception:  # noqa: BLE001 - an ACL or an old broker: the other signals decide
        return 1


def _create_missing(conf: Mapping[str, Any], specs: list[tuple[str, int, dict[str, str]]],
                    timeout: float, factor: int | None = None, min_insync: int | None = None) -> list[str]:
    """Create each `(name, partitions, config)` whose topic does not exist yet, replicated as `resolve_replication`
    says; returns the names created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.cimpl import NewTopic

    admin = _admin(conf)
    existing = set(admin.list_topics(timeout=timeout).topics)
    if all(name in existing for name, _, _ in specs):
        return []
    rep = resolve_replication(conf, factor, min_insync, timeout, admin=admin)
    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=rep.factor,
                       config={**config, "min.insync.replicas": str(rep.min_insync)})
              for name, partitions, config in specs if name not in existing]
    if not wanted:
        return []
    created: list[str] = []
    for attempt in range(5):
        retry: list[Any] = []
        for topic, (name, fut) in zip(wanted, admin.create_topics(wanted, operation_timeout=timeout).items()):
            try:
                fut.result(timeout)
                created.append(name)
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() == "TOPIC_ALREADY_EXISTS":
                    continue
                if attempt == 4 or not (error.retriable() or error.code() in _TRANSIENT):
                    raise
                retry.append(topic)  # e.g. a cluster whose brokers' metadata still differ just after its start
        if not retry:
            break
        wanted = retry
        time.sleep(0.5)
    return created


def create_topics(conf: Mapping[str, Any], prefix: str = "", partitions: int = 6, timeout: float = 30.0,
                  replication_factor: int | None = None, min_insync_replicas: int | None = None) -> list[str]:
    """Create every declared topic that does not exist yet; returns the names created (idempotent).

    Replication: `resolve_replication(replication_factor, min_insync_replicas)` (None = the cluster's default)."""
    return _create_missing(
        conf, [(t.full_name(prefix), t.partitions or partitions, t.broker_config()) for t in ALL_TOPICS], timeout,
        replication_factor, min_insync_replicas)


def ensure_topics(conf: Mapping[str, Any], names: Sequence[str], partitions: int, timeout: float = 30.0,
                  compact: bool = False, replication_factor: int | None = None,
                  min_insync_replicas: int | None = None) -> list[str]:
    """Create the topics in `names` that do not exist (delete policy, or compacted); returns those created."""
    config = {"cleanup.policy": "compact"} if compact else {}
    return _create_missing(conf, [(n, partitions, config) for n in names], timeout, replication_factor,
                           min_insync_replicas)


def paysync_topic_names(prefix: str = "") -> list[str]:
    """The full names of every declared topic."""
    return [t.full_name(prefix) for t in ALL_TOPICS]


def check_replication(conf: Mapping[str, Any], names: Sequence[str], replication_factor: int | None = None,
                      min_insync_replicas: int | None = None, timeout: float = 30.0) -> Replication:
    """Start-up check of a component: each topic in `names` that exists, and the consumer offsets, has the
    resolved replication factor and `min.insync.replicas` (the offsets: at least the factor). Returns the
    replication; ReplicationError listing every mismatch. Missing topics are not this check's business (the
    component creates or waits for them); a replica briefly out of sync (a node restarting) is not a mismatch.

    `timeout` is ONE deadline for the whole check, shared by all its admin calls (the metadata twice, a broker's
    config, each topic's config): each call is given what is left of it, and a transient client error (a broker
    restarting) is asked again until it passes. So the check answers, or raises KafkaException, within `timeout`
    seconds (and `_GRACE`) however many calls it makes (each with its own timeout, they added up to several times
    it); the broker config is asked of the broker that answered the metadata, never of one that may be down."""
    admin = _admin(conf)
    deadline = time.monotonic() + timeout
    rep = _resolve(admin, replication_factor, min_insync_replicas, deadline)
    topics = _metadata(admin, deadline).topics
    present = sorted({n for n in names if n in topics and topics[n].partitions})
    problems: list[ReplicationProblem] = []
    for name in present:
        counts = sorted({len(p.replicas) for p in topics[name].partitions.values()})
        if counts != [rep.factor]:
            found = "/".join(map(str, counts))
            problems.append(ReplicationProblem(name, f"replication factor {found}, not {rep.factor}"))
    offsets = topics.get(OFFSETS_TOPIC)
    if offsets is not None and offsets.partitions:
        low = min(len(p.replicas) for p in offsets.partitions.values())
        if low < rep.factor:
            problems.append(ReplicationProblem(
                OFFSETS_TOPIC, f"replication factor {low}, below {rep.factor}: set offsets.topic.replication.factor "
                "on the brokers and reassign it", subject=f"{OFFSETS_TOPIC} (the consumer offsets)"))
    for name, value in _min_insync(admin, present, deadline).items():
        if value != rep.min_insync:
            problems.append(ReplicationProblem(name, f"min.insync.replicas {value}, not {rep.min_insync}"))
    if problems:
        raise ReplicationError(problems, rep)
    return rep


def replication_problem(conf: Mapping[str, Any], names: Sequence[str], replication_factor: int | None,
                        min_insync_replicas: int | None, timeout: float = 15.0) -> str | None:
    """A component's start-up check (`check_replication` on `names`): None when the topics are replicated as the
    settings (`PAYSYNC_TOPIC_REPLICATION_FACTOR`, `…_MIN_INSYNC_REPLICAS`) require, else the error to exit 2 with.
    A cluster that cannot be reached is not a replication problem (the component reports the broker itself):
    the check gives up after `timeout` seconds in all (`check_replication`'s one deadline), logs it and returns None."""
    from confluent_kafka import KafkaException

    try:
        check_replication(conf, names, replication_factor, min_insync_replicas, timeout)
    except ReplicationError as exc:
        return str(exc)
    except (KafkaException, TimeoutError) as exc:  # TimeoutError: a future not done by the deadline
        error = exc.args[0] if isinstance(exc, KafkaException) else exc
        logging.getLogger("paysync.topics").warning(
            "topic replication not checked: the cluster did not answer", extra={"error": str(error)})
    return None


def _min_insync(admin: Any, names: Sequence[str], deadline: float) -> dict[str, int]:
    """Each topic's effective `min.insync.replicas` (its own, else the broker's default), all read by `deadline`.
    A topic created a moment ago may be unknown to the broker asked for a short while: asked again then."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]  # exported, not in __all__

    out: dict[str, int] = {}
    for name in names:
        while True:
            resource = ConfigResource(ConfigResource.Type.TOPIC, name)
            try:
                futures = admin.describe_configs([resource], request_timeout=_left(deadline))
                configs = futures[resource].result(_left(deadline) + _GRACE)
                out[name] = int(configs["min.insync.replicas"].value)
                break
            except KafkaException as exc:
                code = exc.args[0].code()
                if code != KafkaError.UNKNOWN_TOPIC_OR_PART and not _transient(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
    return out


def _metadata(admin: Any, deadline: float) -> Any:
    """The cluster's metadata by `deadline`; a transient client error (a broker restarting) asked again till then."""
    from confluent_kafka import KafkaException

    while True:
        try:
            return admin.list_topics(timeout=_left(deadline))
        except KafkaException as exc:
            if not _transient(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def _transient(exc: Exception) -> bool:
    """Whether a KafkaException is a passing fault of a cluster in flux (worth asking again)."""
    error = exc.args[0]
    return bool(error.retriable() or error.code() in _TRANSIENT)


def _left(deadline: float) -> float:
    """Seconds left until `deadline` for one admin call (a floor: librdkafka refuses a zero timeout)."""
    return max(_MIN_CALL_S, deadline - time.monotonic())


def wait_for_topics(conf: Mapping[str, Any], names: list[str], timeout: float = 30.0) -> list[str]:
    """Wait until every topic in `names` is in the cluster's metadata with a leader for each partition.

    Returns the names still missing or leaderless when `timeout` runs out (empty: all ready). A topic that
    was just created can be missing from a fresh client's first metadata for a moment, and a consumer group
    member that joins then is assigned none of its partitions.
    """
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


def _admin(conf: Mapping[str, Any]) -> Any:
    """An admin client that keeps librdkafka's informational lines (e.g. a purged queue at close) out of the logs."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"log_level": 4, **conf})
