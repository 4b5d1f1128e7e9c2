"""The consumer loop: `salesforce.upserts` → batches → Salesforce; offsets committed after the fact.

A confluent-kafka consumer group (several sinks share the partitions). Offsets are committed
synchronously, per partition, only up to the oldest message whose record has not landed or been
dead-lettered (with the dead letter delivered), so a crash replays at most the uncommitted messages,
and upserts by external id make that replay harmless. When the daily API budget runs out (or a
configured share of it is used, as `Sforce-Limit-Info` on every answer shows) the assigned partitions are
paused — `poll` keeps the membership alive — and resumed once a cheap probe call's header shows the budget back
(no `/limits`, which needs "View Setup and Configuration"). Bulk 2.0 jobs run in the background while the loop
keeps consuming and polling; their records are committed once the job's results are in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from paysync.codec import AvroCodec, CodecError
from paysync.deadletter import dead_letter, encode_dead_letter
from paysync.produce import produce_waiting
from paysync.topics import DEAD_LETTERS, SALESFORCE_UPSERTS
from sinks.audit import event_created, ingested_millis, stamp
from sinks.batcher import Batcher
from sinks.client import CallError, SalesforceClient
from sinks.flush_policy import CallPace, Step, decide
from sinks.lag import consumer_lag
from sinks.metrics import SinkMetrics
from sinks.offsets import OffsetTracker
from sinks.records import Origin, PendingRecord
from sinks.settings import SinkSettings
from sinks.status_events import StatusEvents
from sinks.sync_errors import streams_letter_record, sync_error_row
from sinks.writer import BatchWriter, WriteReport

log = logging.getLogger(__name__)

STAGE = "sink"
_READ_BATCH = 1000  # messages per consume call


class Sink:
    """One sink instance; `run(stop)` until `stop` is set, then a last flush and commit."""

    def __init__(self, settings: SinkSettings, metrics: SinkMetrics | None = None,
                 client: SalesforceClient | None = None, codec: AvroCodec | None = None) -> None:
        self.s = settings
        self.metrics = metrics or SinkMetrics()
        self.client = client or SalesforceClient(settings.salesforce, self.metrics,
                                                  reauth_attempts=settings.sink_reauth_attempts)
        self.codec = codec or AvroCodec(settings.kafka.schema_registry_url)
        self.topic = SALESFORCE_UPSERTS.full_name(settings.topics.prefix)
        self.dlq_topic = DEAD_LETTERS.full_name(settings.topics.prefix)
        self.pool = ThreadPoolExecutor(max_workers=settings.sink_concurrency, thread_name_prefix="sink-call")
        self.events = StatusEvents(self.client, self.pool) if settings.sink_status_events else None
        self.batcher = Batcher(settings.sink_batch_max_records, settings.sink_batch_max_bytes, settings.sink_batch_max_age_s)
        self.tracker = OffsetTracker()
        self.pace = CallPace(settings.sink_budget_share, settings.sink_pace_burst_s)
        self.writer = BatchWriter(self.client, settings, self.metrics, self.pool)
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self._budget_paused = False
        self._full_paused = False
        self._applied_pause = False
        self._last_pause_check = 0.0
        self._last_lag = 0.0
        self._lag = 0
        self._decode_dead: list[tuple[tuple[str, int], int]] = []
        self._delivery_errors = 0

    # Kafka plumbing ------------------------------------------------------------------------------

    def _make_clients(self) -> None:
        base = self.s.kafka.confluent_config()
        self.consumer = Consumer({
            **base,
            "group.id": self.s.sink_group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "max.poll.interval.ms": 300_000,  # Bulk jobs never block the loop (`sinks.bulkjobs`)
            "session.timeout.ms": self.s.sink_session_timeout_ms,
            # small per-partition fetches interleave the partitions, so parents (keyed elsewhere) arrive
            # close to their children instead of after a whole partition's backlog
            "max.partition.fetch.bytes": 128 * 1024,
            "fetch.wait.max.ms": self.s.sink_fetch_wait_ms,
            "fetch.min.bytes": self.s.sink_fetch_min_bytes,
        })
        self.producer = Producer({**base, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
        topics = [self.topic, self.dlq_topic] if self.s.sink_streams_dead_letters else [self.topic]
        self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": [p.partition for p in partitions]})
        self._applied_pause = False  # re-apply a pause to the new assignment in the loop

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = {(p.topic, p.partition) for p in partitions}
        log.info("partitions revoked", extra={"partitions": sorted(p for _, p in tps)})
        self._commit(only=tps)
        dropped = self.batcher.drop_partitions(tps)
        for tp in tps:
            self.tracker.forget(tp)
        if dropped:
            log.info("dropped pending records of revoked partitions", extra={"records": len(dropped)})
        self._applied_pause = False

    def _delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._delivery_errors += 1
            log.error("dead letter not delivered", extra={"error": str(err)})

    # messages ------------------------------------------------------------------------------------

    def _handle(self, msg: Message) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        assert topic is not None and partition is not None and offset is not None  # a consumed message has them
        tp = (topic, partition)
        self.tracker.received(tp, offset)
        value = msg.value()
        if topic == self.dlq_topic:
            self._handle_letter(msg, tp, offset)
            return
        try:
            upsert = self.codec.decode(value, SALESFORCE_UPSERTS.schema)
        except CodecError as exc:
            self._send_dead_letter(dead_letter(
                topic=tp[0], partition=tp[1], offset=offset, stage=STAGE, error_kind="decode",
                error_code=exc.code, message=exc.message, key=msg.key(), value=value,
            ), msg.key())
            self.metrics.dead_letters.labels(code=exc.code).inc()
            self._decode_dead.append((tp, offset))
            return
        origin = Origin(tp[0], tp[1], offset, msg.key(), value, upsert.get("source_event_id"),
                        ingested_millis(upsert.get("ingested_at")), event_created(upsert.get("version")))
        self.batcher.add(PendingRecord.from_upsert(upsert, origin))

    def _handle_letter(self, msg: Message, tp: tuple[str, int], offset: int) -> None:
        """A dead letter: the streams stage's become `Stripe_Sync_Error__c` rows; the others are done at once (an
        unreadable letter is logged, never dead-lettered again)."""
        try:
            letter = self.codec.decode(msg.value(), DEAD_LETTERS.schema)
        except CodecError as exc:
            log.warning("unreadable dead letter skipped", extra={"offset": offset, "code": exc.code})
            letter = {}
        origin = Origin(tp[0], tp[1], offset, msg.key(), None, letter.get("event_id"), None)
        record = streams_letter_record(letter, origin) if letter else None
        if record is None:
            self.tracker.done(tp, offset)
        else:
            self.batcher.add(record)

    def _send_dead_letter(self, record: dict[str, Any], key: bytes | None) -> None:
        assert self.producer is not None
        topic, payload = encode_dead_letter(self.codec, record, self.s.topics.prefix)
        produce_waiting(self.producer, topic, payload, key=key, on_delivery=self._delivery)

    # flushing ------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every ready record, dead-letter the poison ones, requeue the rest, commit."""
        started = time.monotonic()
        ready = self._read_before_write(self.batcher.take_ready())
        if ready:
            read_s = time.monotonic() - started
            known = self.events.versions(ready) if self.events is not None else None
            report = self.writer.write(ready, backlog=self._lag + len(self.batcher), known_versions=known)
            written = time.monotonic()
            self.metrics.batch_size.observe(len(ready))
            self._apply(report)
            self.metrics.batch_seconds.observe(time.monotonic() - started)
            log.info("batch written", extra={
                "records": len(ready), "landed": len(report.landed), "dead": len(report.dead),
                "retry": len(report.retry), "bulk_jobs": len(report.submitted),
                "seconds": round(time.monotonic() - started, 3), "read_s": round(read_s, 3),
                "write_s": round(written - started - read_s, 3), "after_s": round(time.monotonic() - written, 3),
            })
        else:
            self._deliver_dead_letters()
        self._commit()

    def _read_before_write(self, ready: list[PendingRecord]) -> list[PendingRecord]:
        """Stamp the audit fields; read the old statuses (`sinks.status_events`). Records whose read failed wait."""
        stamp(ready)
        if self.events is None or not ready:
            return ready
        unread = {id(r) for r in self.events.before(ready)}
        for r in ready:
            if id(r) in unread:
                r.not_before = time.monotonic() + self.s.sink_retry_base_s
                self.batcher.requeue(r)
        if unread and self._budget_spent():
            self._pause_for_budget()
        return [r for r in ready if id(r) not in unread]

    def _finish_bulk(self) -> None:
        """Poll the running Bulk jobs that are due; apply and commit what the finished ones decided."""
        report = self.writer.finish_bulk()
        if report is not None:
            self._apply(report)
            self._commit()

    def _apply(self, report: WriteReport) -> None:
        """Mark landed records done, dead-letter (and deliver) the dead ones and refused links, requeue the rest."""
        now_ms = time.time() * 1000
        for r in report.landed:
            for o in r.origins:
                self.tracker.done((o.topic, o.partition), o.offset)
            last = r.origins[-1].ingested_at_ms
            if last:
                self.metrics.end_to_end.observe(max(0.0, (now_ms - last) / 1000))
        sync_rows: list[dict[str, Any]] = []
        for r, code, message in report.dead:
            log.warning("record dead-lettered", extra={"key": r.key, "code": code, "event_id": r.event_id})
            sync_rows += self._dead_letter_origins(r, code, message)
        for r, code, message in report.refused_links:
            log.warning("link refused; record written without it", extra={"key": r.key, "code": code,
                                                                            "event_id": r.event_id})
            sync_rows += self._dead_letter_origins(r, code, message)
        for r in report.retry:
            self.batcher.requeue(r)
        if self.events is not None:
            self.events.after(report.landed, [*report.landed, *(r for r, _, _ in report.dead)], time.monotonic())
        self._deliver_dead_letters()
        for r, _, _ in report.dead:
            for o in r.origins:
                self.tracker.done((o.topic, o.partition), o.offset)
        if sync_rows and self.s.sink_write_sync_errors:
            self.writer.write_sync_errors(sync_rows)
        if report.paused or self._budget_spent():
            self._pause_for_budget()

    def _dead_letter_origins(self, r: PendingRecord, code: str, message: str) -> list[dict[str, Any]]:
        """A dead letter for every message `r` holds; their `Stripe_Sync_Error__c` rows."""
        self.metrics.dead_letters.labels(code=code).inc()
        rows = []
        for o in r.origins:
            self._send_dead_letter(dead_letter(
                topic=o.topic, partition=o.partition, offset=o.offset, stage=STAGE, error_kind="salesforce",
                error_code=code, message=message, key=o.key, value=o.value, event_id=o.event_id,
                object_id=r.external_id, attempts=r.attempts + 1, first_failure_ms=r.first_failure_ms,
            ), o.key)
            rows.append(sync_error_row(o, r, code, message))
        return rows

    def _deliver_dead_letters(self) -> None:
        assert self.producer is not None
        if self._decode_dead or len(self.producer):
            remaining = self.producer.flush(30)
            if remaining or self._delivery_errors:
                raise RuntimeError("dead letters could not be delivered; not committing")
        for tp, offset in self._decode_dead:
            self.tracker.done(tp, offset)
        self._decode_dead.clear()

    def _commit(self, only: set[tuple[str, int]] | None = None) -> None:
        if self.consumer is None:
            return
        points = self.tracker.to_commit()
        if only is not None:
            points = {tp: o for tp, o in points.items() if tp in only}
        if not points:
            return
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in points.items()], asynchronous=False)
            self.tracker.committed(points)
        except KafkaException as exc:
            log.warning("offset commit failed; will retry", extra={"error": str(exc)})

    # budget and backpressure ---------------------------------------------------------------------

    def _budget_spent(self) -> bool:
        return self.client.budget.share_used() >= self.s.sink_budget_share

    def _pause_for_budget(self) -> None:
        if not self._budget_paused:
            log.warning("API budget spent: pausing consumption",
                        extra={"used": self.client.budget.used, "max": self.client.budget.max})
        self._budget_paused = True
        self._last_pause_check = time.monotonic()
        self.metrics.paused.set(1)

    def _check_budget(self, now: float) -> None:
        """While paused, probe the budget every `sink_pause_check_s` (one cheap call); resume when it is back."""
        if not self._budget_paused or now - self._last_pause_check < self.s.sink_pause_check_s:
            return
        self._last_pause_check = now
        try:
            budget = self.client.probe_budget()
        except CallError as exc:
            log.info("still paused", extra={"code": exc.decision.code})
            return
        if budget.max == 0 or budget.share_used() < self.s.sink_budget_share:
            log.info("API budget back: resuming", extra={"used": budget.used, "max": budget.max})
            self._budget_paused = False
            self.metrics.paused.set(0)
            for r in self.batcher.take_ready():
                r.not_before = 0.0
                self.batcher.requeue(r)

    def _apply_pause(self) -> None:
        assert self.consumer is not None
        want = self._budget_paused or self._full_paused
        if want != self._applied_pause:
            assignment = self.consumer.assignment()
            if assignment:
                (self.consumer.pause if want else self.consumer.resume)(assignment)
            self._applied_pause = want

    def _update_lag(self, now: float) -> None:
        assert self.consumer is not None
        if now - self._last_lag < 5.0:
            return
        self._last_lag = now
        lag = consumer_lag(self.consumer, self.metrics.lag)
        if lag is not None:
            self._lag = lag

    def _drain_bulk(self, limit_s: float = 30.0) -> None:
        """At stop: wait (bounded) for the running Bulk jobs, so their records are committed or replayed."""
        deadline = time.monotonic() + min(limit_s, self.s.sink_bulk_timeout_s)
        while self.writer.jobs.jobs and time.monotonic() < deadline:
            due = self.writer.jobs.next_poll_at() or 0.0
            time.sleep(max(0.0, min(0.5, due - time.monotonic())))
            self._finish_bulk()
        if self.writer.jobs.jobs:
            log.warning("stopping with Bulk jobs still running; their messages are replayed on restart",
                        extra={"jobs": [j.job_id for j in self.writer.jobs.jobs]})

    # loop ----------------------------------------------------------------------------------------

    def _early_writes(self, now: float) -> bool:
        """Adaptive flushing is on and allowed now: the budget is not tight (`sink_bulk_budget_share`: full batches
        then) and early writes keep to its daily pace (`CallPace`)."""
        budget = self.client.budget
        return (self.s.sink_adaptive and budget.share_used() < self.s.sink_bulk_budget_share
                and self.pace.allows(now, budget.max))

    def _flush_paced(self, reason: str) -> None:
        """A flush of the loop, counted by `reason`; the calls it cost are drawn from the early writes' pace."""
        self.metrics.flushes.labels(reason=reason).inc()
        self._paced(self.flush)

    def _publish_due_events(self, now: float, force: bool = False) -> None:
        """Status events that found no room in a read call, in calls of their own once due (drawn from the pace)."""
        if self.events is not None and not self._budget_paused:
            events = self.events
            self._paced(lambda: events.publish_due(now, self.s.sink_event_max_age_s, force=force))

    def _paced(self, action: Callable[[], object]) -> None:
        """Run `action`; the API calls it cost (read from the budget header) are drawn from the early writes' pace."""
        used, known = self.client.budget.used, self.client.budget.max > 0
        action()
        budget = self.client.budget
        self.pace.spent(max(0, budget.used - used) if known else 0, time.monotonic(), budget.max)

    def _receive(self, step: Step) -> bool:
        """Read and handle messages for `step`; True when the read came back short (nothing more ready now).

        GATHER: what the consumer has, waiting at most `sink_gather_ms`. WAIT: up to the next age deadline (0.2 s at
        most); adaptive with nothing new pending, only until the first message (`consume` waits for a whole batch)."""
        assert self.consumer is not None
        if step is Step.GATHER:
            timeout, wanted = self.s.sink_gather_ms / 1000, _READ_BATCH
        else:
            wait = self.batcher.next_due_in()
            timeout = 0.2 if wait is None else max(0.0, min(0.2, wait))
            wanted = 1 if self.s.sink_adaptive and self.batcher.readiness().fresh == 0 else _READ_BATCH
        if wanted == 1:
            first = self.consumer.poll(timeout)  # returns at the first message
            msgs = [] if first is None else [first]
        else:
            msgs = self.consumer.consume(num_messages=wanted, timeout=timeout)
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", extra={"error": str(err)})
                continue
            self._handle(msg)
        return len(msgs) < wanted

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; the last flush and commit happen before returning.

        Logs in first: a login Salesforce refuses raises `AuthError` before anything is consumed."""
        self.client.open_session()
        self._make_clients()
        assert self.consumer is not None
        drained = True
        try:
            while not stop.is_set():
                now = time.monotonic()
                self._check_budget(now)
                if self.writer.jobs.jobs:
                    self._finish_bulk()
                held = len(self.batcher) + self.writer.jobs.record_count()
                self._full_paused = held >= 2 * self.s.sink_batch_max_records
                self._apply_pause()
                decision = decide(self.batcher.readiness(), adaptive=self._early_writes(now), drained=drained,
                                  in_flight=bool(self.writer.jobs.jobs), paused=self._budget_paused)
                if decision.step is Step.FLUSH:
                    self._flush_paced(decision.reason)
                    drained = False  # what arrived during the write is taken by the next gather
                    continue
                drained = self._receive(decision.step)
                if self._decode_dead:
                    self._deliver_dead_letters()
                    self._commit()
                self._update_lag(now)
                self._publish_due_events(now)
            self.writer.bulk_enabled = False  # stopping: what is left goes by Composite
            self._drain_bulk()
            if not self._budget_paused:
                self.flush()
            self._publish_due_events(time.monotonic(), force=True)
            if self.events is not None and self.events.queued:
                log.warning("stopping with status events unpublished (API budget spent)",
                            extra={"events": len(self.events.queued)})
            self._commit()
        finally:
            self.consumer.close()
            if self.producer is not None:
                self.producer.flush(10)
            self.pool.shutdown(wait=True)

