"""Handing a step's outputs to the producer without waiting for acknowledgements, and stopping at once when one fails.

Faust commits an input offset only after `app.producer.flush()` has waited for everything produced so far, so
every output of a committed record is durable. aiokafka's flush also returns for failed batches, without raising:
a delivery that fails after the producer's retries therefore ends the process at once (`fail_stop`), before any
later commit; the record is replayed and re-emitted by the next worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, cast

import orjson

from paysync.codec import CodecError
from streams.metrics import StreamMetrics
from streams.outputs import Origin, Output, OutputEncoder, Target, dead_letter_output
from streams.steps import Step

log = logging.getLogger("paysync.streams")

EXIT_DELIVERY_FAILED = 70  # EX_SOFTWARE

# `app.producer.send(topic, key, value, partition, timestamp, headers)`: awaited, the delivery's future
Send = Callable[[str, bytes | None, bytes | None, int | None, float | None, Any], Awaitable[Awaitable[Any]]]


def exit_now(status: int) -> NoReturn:
    """Flush the logs and end the process at once: no Faust shutdown, no offset commit."""
    logging.shutdown()
    os._exit(status)


def fail_stop(delivery: "asyncio.Future[Any]") -> None:
    """Done-callback of every output: a record the producer gave up on ends the process before the next commit."""
    if delivery.cancelled():
        error: BaseException | None = asyncio.CancelledError()
    else:
        error = delivery.exception()
    if error is None:
        return
    log.critical("an output was not delivered; stopping before the next commit",
                 extra={"error": f"{type(error).__name__}: {error}"})
    exit_now(EXIT_DELIVERY_FAILED)


class Delivery:
    """Encodes a step's outputs, hands them to the producer, then applies the step's table writes."""

    def __init__(self, send: Send, topic_names: Mapping[Target, str], encoder: OutputEncoder,
                 apply: Callable[[Step], None], metrics: StreamMetrics) -> None:
        self._send = send
        self._topics = topic_names
        self._encoder = encoder
        self._apply = apply
        self._metrics = metrics

    def _bytes(self, out: Output) -> bytes:
        if out.target is Target.PAYOUT:
            return orjson.dumps(out.value)
        return self._encoder.encode(out)

    async def deliver(self, step: Step, origin: Origin, key: bytes | None, value: bytes | None) -> None:
        """Hand a step's outputs to the producer (no waiting for acks), then apply its table writes.

        The writes go to the changelog partition of the current event (Faust's rule), i.e. the input partition
        (a record read to fill a hole belongs to the current event's partition too). An output that does not fit
        its schema (a mapping bug) dead-letters the input record instead, with nothing written.
        """
        if step.outputs:
            try:
                encoded = [(out, self._bytes(out)) for out in step.outputs]
            except CodecError as exc:
                dead = dead_letter_output(origin, key, value, "internal", exc.code, exc.message)
                self._metrics.child(self._metrics.dead_lettered, "output", exc.code).inc()
                step = Step([dead], [])
                encoded = [(dead, self._encoder.encode(dead))]
            for out, encoded_value in encoded:
                delivery = await self._send(self._topics[out.target], out.key, encoded_value, None, None, None)
                cast("asyncio.Future[Any]", delivery).add_done_callback(fail_stop)  # aiokafka returns a Future
        if step.writes:
            self._apply(step)
