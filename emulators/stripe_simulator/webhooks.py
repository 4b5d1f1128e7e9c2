"""Webhook delivery the way Stripe does it: signed POSTs, retries with backoff on non-2xx or timeout, and
knobs for what real delivery does to a receiver (duplicates, reordering, lost deliveries).

`Stripe-Signature: t=<wall-clock unix>,v1=<hmac>[,v1=<hmac>]`: one `v1` per configured secret (rotation).
Retries are time-compressed: `retry_base * 2**n` seconds, at most `max_attempts` attempts. Dropped deliveries
are never attempted; the event is still listed by `/v1/events`.
"""

from __future__ import annotations

import heapq
import hashlib
import hmac
import logging
import random
import threading
import time
from dataclasses import dataclass, field

import httpx

from .params import LEGACY_API_VERSION
from .store import DELIVERY_DROPPED, DELIVERY_FAILED, DELIVERY_OK, DELIVERY_PENDING, Store

log = logging.getLogger(__name__)


def signature_header(body: bytes, secrets: list[str], timestamp: int) -> str:
    """`t=…,v1=…` with one `v1` per secret, over `"<t>.<body>"`."""
    signed = f"{timestamp}.".encode() + body
    sigs = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in sigs)])


@dataclass
class DeliveryKnobs:
    """What delivery does: the endpoint, secrets, and the faults real delivery shows."""

    webhook_url: str | None = None
    webhook_secrets: list[str] = field(default_factory=list)
    duplicate_rate: float = 0.0
    reorder_window: int = 0
    drop_rate: float = 0.0
    drop_marks_failed: bool = False
    delivery_concurrency: int = 4
    timeout: float = 5.0
    max_attempts: int = 4
    retry_base: float = 0.5
    seed: int = 0
    # Endpoint API versions (`versions.py`): platform events go to the account endpoint, connected accounts'
    # events to the Connect endpoint; both at `webhook_url` with `webhook_secrets`. "" = the pinned version.
    webhook_api_version: str = ""
    connect_webhook_api_version: str = LEGACY_API_VERSION


@dataclass
class DeliveryStats:
    """Counters of deliveries (a delivery is one POST)."""

    attempted: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    failed: int = 0
    dropped: int = 0
    duplicates: int = 0
    retries: int = 0
    submitted: int = 0
    not_sent_version: int = 0  # events the endpoint's API version does not have (e.g. invoice_payment.* pre-basil)


class Deliverer:
    """Queues events for delivery and POSTs them from worker threads."""

    def __init__(self, store: Store, knobs: DeliveryKnobs, max_queue: int = 20000) -> None:
        self.store = store
        self.knobs = knobs
        self.stats = DeliveryStats()
        self._rng = random.Random(f"delivery:{knobs.seed}")
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str, bytes, int, bool]] = []
        self._window: list[tuple[str, bytes]] = []
        self._seq = 0
        self._in_flight = 0
        self._max_queue = max_queue
        self._stop = False
        self._threads = [threading.Thread(target=self._worker, daemon=True, name=f"webhook-{i}")
                         for i in range(max(1, knobs.delivery_concurrency))]
        for t in self._threads:
            t.start()

    # -- intake -------------------------------------------------------------------------------------------
    def submit(self, event_id: str, body: str) -> None:
        """Hand over a new event (blocks while the queue is full: backpressure on the generator)."""
        with self._cond:
            self.stats.submitted += 1
            if not self.knobs.webhook_url:
                return
            if self.knobs.drop_rate and self._rng.random() < self.knobs.drop_rate:
                self.stats.dropped += 1
                status = DELIVERY_FAILED if self.knobs.drop_marks_failed else DELIVERY_DROPPED
                self.store.set_delivery(event_id, status)
                return
            while len(self._heap) >= self._max_queue and not self._stop:
                self._cond.wait(0.1)
            self._window.append((event_id, body.encode()))
            if len(self._window) > self.knobs.reorder_window:
                self._release_one()

    def flush(self) -> None:
        """Release whatever the reordering window holds."""
        with self._cond:
            while self._window:
                self._release_one()

    def _release_one(self) -> None:
        index = self._rng.randrange(len(self._window)) if self.knobs.reorder_window else 0
        event_id, body = self._window.pop(index)
        self.store.set_delivery(event_id, DELIVERY_PENDING)
        self._push(0.0, event_id, body, 0, False)
        if self.knobs.duplicate_rate and self._rng.random() < self.knobs.duplicate_rate:
            self.stats.duplicates += 1
            self._push(self._rng.uniform(0.0, 0.2), event_id, body, 0, True)

    def _push(self, delay: float, event_id: str, body: bytes, attempt: int, duplicate: bool) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (time.monotonic() + delay, self._seq, event_id, body, attempt, duplicate))
        self._cond.notify()

    # -- workers ------------------------------------------------------------------------------------------
    def pending(self) -> int:
        """Deliveries queued, waiting for a retry, in the window, or in flight."""
        with self._cond:
            return len(self._heap) + len(self._window) + self._in_flight

    def _next(self) -> tuple[str, bytes, int, bool] | None:
        with self._cond:
            while not self._stop:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    _, _, event_id, body, attempt, duplicate = heapq.heappop(self._heap)
                    self._in_flight += 1
                    self._cond.notify_all()
                    return event_id, body, attempt, duplicate
                wait = self._heap[0][0] - time.monotonic() if self._heap else 0.2
                self._cond.wait(max(0.001, min(wait, 0.2)))
            return None

    def _worker(self) -> None:
        with httpx.Client(timeout=self.knobs.timeout) as client:
            while (item := self._next()) is not None:
                event_id, body, attempt, duplicate = item
                ok = self._post(client, body)
                with self._cond:
                    self._in_flight -= 1
                    self.stats.attempted += 1
                    if ok:
                        self.stats.succeeded += 1
                        if not duplicate:
                            self.store.set_delivery(event_id, DELIVERY_OK)
                        continue
                    self.stats.failed_attempts += 1
                    if attempt + 1 < self.knobs.max_attempts:
                        self.stats.retries += 1
                        self._push(self.knobs.retry_base * 2**attempt, event_id, body, attempt + 1, duplicate)
                    elif not duplicate:
                        self.stats.failed += 1
                        self.store.set_delivery(event_id, DELIVERY_FAILED)

    def _post(self, client: httpx.Client, body: bytes) -> bool:
        url = self.knobs.webhook_url
        if not url:
            return False
        header = signature_header(body, self.knobs.webhook_secrets, int(time.time()))
        try:
            response = client.post(url, content=body, headers={
                "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"})
        except httpx.HTTPError as exc:
            log.debug("webhook delivery failed", extra={"error": type(exc).__name__})
            return False
        return 200 <= response.status_code < 300

    def stop(self) -> None:
        """Stop the workers (undelivered items are abandoned)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=5)
