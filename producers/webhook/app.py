"""The receiver as a raw ASGI app (uvicorn): `POST /webhooks/stripe`, `GET /healthz`, `GET /readyz`.

Order of checks: content type (415), size (413), signature (400), JSON and event shape (400), then
publish and await the broker's ack: 200 only after it, 503 when the broker is unreachable or slower
than the publish deadline (Stripe retries; a 503'd event may still land once: the streams drop it as a copy
of an event already applied).
Every refusal answers a JSON `{"error": reason, "message": …}` and is counted by reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from paysync.codec import AvroCodec, CodecError
from paysync.records import ENVELOPE
from paysync.topics import STRIPE_EVENTS
from producers.envelope import NotAnEvent, envelope
from producers.publisher import PublishError
from producers.thin_events import ThinEventFetcher
from producers.webhook.metrics import WebhookMetrics
from producers.webhook.signature import SignatureError, verify

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
WEBHOOK_PATH = "/webhooks/stripe"


class Publisher(Protocol):
    def publish(self, topic: str, key: str, value: bytes) -> asyncio.Future[None]: ...
    def broker_reachable(self, timeout: float = 1.0) -> bool: ...


class Reject(Exception):
    """A refusal: HTTP status, reason label, message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


_JSON_HEADERS = [(b"content-type", b"application/json")]


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class WebhookApp:
    """ASGI callable. `secrets` are HMAC keys; `publisher` must be started; `clock` returns unix seconds."""

    def __init__(
        self,
        *,
        publisher: Publisher,
        secrets: Sequence[bytes],
        topic_prefix: str = "",
        tolerance_s: int = 300,
        future_tolerance_s: int = 60,
        max_body_bytes: int = 1024 * 1024,
        publish_timeout_s: float = 5.0,
        metrics: WebhookMetrics | None = None,
        codec: AvroCodec | None = None,
        clock: Callable[[], float] = time.time,
        on_shutdown: Callable[[], None] | None = None,
        thin_fetcher: ThinEventFetcher | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        self.publisher = publisher
        self.secrets = list(secrets)
        self.topic = STRIPE_EVENTS.full_name(topic_prefix)
        self.tolerance_s = tolerance_s
        self.future_tolerance_s = future_tolerance_s
        self.max_body_bytes = max_body_bytes
        self.publish_timeout_s = publish_timeout_s
        self.metrics = metrics or WebhookMetrics.create()
        self.codec = codec or AvroCodec()
        self.clock = clock
        self.on_shutdown = on_shutdown
        self.thin_fetcher = thin_fetcher  # None: thin events are published as they came (the streams skip them)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == WEBHOOK_PATH:
            if method != "POST":
                await _respond(send, 405, {"error": "method_not_allowed", "message": "use POST"})
                return
            await self._webhook(scope, receive, send)
        elif path == "/healthz":
            await _respond(send, 200, {"status": "ok"})
        elif path == "/readyz":
            ok = await asyncio.get_running_loop().run_in_executor(None, self.publisher.broker_reachable, 1.0)
            await _respond(send, 200 if ok else 503, {"status": "ready" if ok else "broker_unreachable"})
        else:
            await _respond(send, 404, {"error": "not_found", "message": path})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await asyncio.get_running_loop().run_in_executor(None, self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        received_at_ms = int(self.clock() * 1000)
        self.metrics.received.inc()
        try:
            headers = _headers(scope)
            body = await self._read_body(headers, receive)
            key, value, event_id, event = self._verify_and_encode(body, headers, received_at_ms)
        except Reject as rej:
            self.metrics.rejected.labels(rej.reason).inc()
            await _respond(send, rej.status, {"error": rej.reason, "message": rej.message})
            return
        topic = self.topic
        if self.thin_fetcher is not None and event.get("object") == "v2.core.event":
            topic, key, value = await self._resolve_thin(self.thin_fetcher, event, received_at_ms,
                                                         (topic, key, value))
        status, body_out = await self._publish(key, value, event_id, topic)
        await _respond(send, status, body_out)

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        ctype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if ctype != b"application/json":
            raise Reject(415, "unsupported_media_type", "Content-Type must be application/json")
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise Reject(413, "body_too_large", f"body larger than {self.max_body_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Reject(400, "malformed_json", "client disconnected before the body ended")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise Reject(413, "body_too_large", f"body larger than {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _verify_and_encode(self, body: bytes, headers: dict[bytes, bytes], received_at_ms: int
                           ) -> tuple[str, bytes, str, dict[str, Any]]:
        """(key, encoded envelope, event id, parsed event) of a verified body; Reject otherwise.

        The body is parsed once, numbers exact (`parse_float=Decimal`), and redacted from that parse.
        """
        raw_header = headers.get(b"stripe-signature")
        try:
            verify(body, raw_header.decode("latin-1") if raw_header is not None else None, self.secrets,
                   self.clock(), self.tolerance_s, self.future_tolerance_s)
        except SignatureError as exc:
            raise Reject(400, exc.reason, str(exc)) from None
        try:
            text = body.decode("utf-8")
            event = json.loads(text, parse_float=Decimal)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise Reject(400, "malformed_json", "the body is not UTF-8 JSON") from None
        try:
            key, record = envelope(event, text, "webhook", received_at_ms, exact=True)
            value = self.codec.encode_record(ENVELOPE, record)
        except (NotAnEvent, CodecError) as exc:
            raise Reject(400, "not_an_event", str(exc)) from None
        return key, value, record["event_id"], event

    async def _resolve_thin(self, fetcher: ThinEventFetcher, event: dict[str, Any], received_at_ms: int,
                            as_came: tuple[str, str, bytes]) -> tuple[str, str, bytes]:
        """A thin event's snapshot (or its dead letter), fetched off the event loop."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, fetcher.resolve, event, "webhook", received_at_ms)
        except NotAnEvent:  # nothing to fetch (no related_object): published as it came
            return as_came

    async def _publish(self, key: str, value: bytes, event_id: str,
                       topic: str | None = None) -> tuple[int, dict[str, Any]]:
        metrics = self.metrics
        metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.publisher.publish(topic or self.topic, key, value), self.publish_timeout_s)
        except (PublishError, asyncio.TimeoutError) as exc:
            metrics.rejected.labels("publish_failed").inc()
            log.warning("webhook not published", extra={"event_id": event_id, "error": str(exc) or "timeout"})
            return 503, {"error": "publish_failed", "message": "broker unavailable, retry later"}
        finally:
            metrics.in_flight.dec()
        metrics.publish_seconds.observe(time.perf_counter() - started)
        metrics.accepted.inc()
        return 200, {"received": True, "event_id": event_id}


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope["headers"]}
