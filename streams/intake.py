"""Every input record reaches the processor in order, with no hole: the continuity guard around each agent's records.

A record above the next offset its partition must hand on means Faust skipped some (`streams.continuity`): they
are read from the broker and handled first, before the record that revealed the hole is acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust
from faust.types import TP, EventT

from streams.continuity import Continuity, Guard
from streams.delivery import Delivery, exit_now
from streams.faust_internals import add_gap, committed_offsets
from streams.metrics import StreamMetrics
from streams.outputs import Origin
from streams.range_reader import RangeReader, RangeReadError
from streams.steps import Step

log = logging.getLogger("paysync.streams")

EXIT_STALLED = 75  # EX_TEMPFAIL: restarted by the supervisor; the group moves the partitions meanwhile

Handler = Callable[[bytes | None, bytes | None, Origin], Step]


class Intake:
    """Hands each agent's records, and any the consumer skipped before them, to a handler and delivers the steps."""

    def __init__(self, app: faust.App, reader: RangeReader, delivery: Delivery, metrics: StreamMetrics) -> None:
        self._app = app
        self.continuity = Continuity()
        self._guard = Guard(self.continuity, reader, self._assignment_start)
        self._delivery = delivery
        self._metrics = metrics

    def _assignment_start(self, tp: tuple[str, int]) -> int:
        """Where the consumer began reading `tp` in this assignment: the committed offset, else the log start.

        Nothing committed is taken as offset 0: reading a hole that starts before the log start begins at the
        log start, so this costs one short read when the log no longer starts at 0.
        """
        committed = committed_offsets(self._app).get(TP(*tp))
        return int(committed) if committed else 0

    async def handle(self, event: EventT, handler: Handler, input_name: str) -> None:  # type: ignore[type-arg]
        """Hand `event` to `handler` and deliver the step, after any records the consumer skipped before it."""
        msg = event.message
        tp = (msg.topic, msg.partition)
        try:
            missing = await self._guard.missing(tp, msg.offset)
        except RangeReadError as exc:
            # the record that revealed the hole is not acknowledged yet, so no commit passes the hole
            log.critical("continuity: records the consumer skipped cannot be read; exiting so that they are "
                         "replayed", extra={"topic": msg.topic, "partition": msg.partition, "error": str(exc)})
            exit_now(EXIT_STALLED)
        if missing:
            log.warning("continuity: the consumer skipped records; read them from the broker", extra={
                "topic": msg.topic, "partition": msg.partition, "from": missing[0].offset, "to": missing[-1].offset,
                "records": len(missing)})
            self._metrics.child(self._metrics.refetched, input_name).inc(len(missing))
            for record in missing:
                origin = Origin(msg.topic, msg.partition, record.offset)
                await self._delivery.deliver(handler(record.key, record.value, origin), origin, record.key,
                                             record.value)
                self.continuity.handled(tp, record.offset)
            await add_gap(self._app, msg.tp, missing[0].offset, msg.offset - 1)
        origin = Origin(msg.topic, msg.partition, msg.offset)
        await self._delivery.deliver(handler(msg.key, msg.value, origin), origin, msg.key, msg.value)
        self.continuity.handled(tp, msg.offset)
