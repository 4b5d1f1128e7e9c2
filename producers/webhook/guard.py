"""uvicorn's httptools protocol with the limits an internet-facing receiver needs (issue 18).

uvicorn 0.54 (the pinned version) has none of them for httptools: `timeout_keep_alive` runs only between
requests and the first byte received cancels it; `h11_max_incomplete_event_size` bounds h11 only (httptools
has the same buffer, "but we can't change the value", Kludex/uvicorn#157); `limit_concurrency` is checked when
a request's headers are complete, so a connection that never completes them is never counted out and is held
for ever. Issue #157 ("Further timeouts and resource limiting") planned `--timeout-request-start` (~10 s) and
`--timeout-request-complete`; neither landed, and the httptools header-size PRs (#1684, #2019) were closed
unmerged. Hence this small subclass, per connection:

- connections: above `max_connections` open at once, a new one is answered 503 and closed;
- head size: more than `max_header_bytes` received before the headers end is answered 431 (RFC 6585 §5,
  "Request Header Fields Too Large") and closed — checked per read, so a 1 MiB header is never held whole
  (`data_received` says what one read may leave uncounted on a kept-alive connection);
- head deadline: headers not complete `header_timeout_s` after the connection opened (or after the previous
  response on a kept-alive one) close the connection;
- body deadline: a body not complete `body_timeout_s` after its headers is answered 408 and closed.

A refusal is written, the sending side shut (FIN), and what the client still sends is read and dropped for at
most `linger_s` before the close, so the client reads the status instead of a reset (no buffering: memory does
not grow). Limits are class attributes (uvicorn builds protocols itself): use `guarded_protocol()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class Limits:
    """What one receiver process accepts; validated by `WebhookSettings`."""

    max_header_bytes: int = 16 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 4096
    linger_s: float = 2.0


def _response(status: int) -> bytes:
    phrase = HTTPStatus(status).phrase.encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, phrase, len(phrase), phrase))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol plus `limits`; `on_refusal(reason)` is told of every connection refused or cut."""

    limits: ClassVar[Limits] = Limits()
    on_refusal: ClassVar[Callable[[str], None] | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between a request's first byte (or the connection's start) and its headers' end
        self._head_bytes = 0
        self._messages = 0  # requests whose body ended on this connection
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False

    # timers ------------------------------------------------------------------------------------------------
    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._cancel()
        self._timer = self.loop.call_later(delay, callback)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, status: int | None, reason: str) -> None:
        """Answer `status` (None: nothing), shut our side, drop what still comes for `linger_s`, then close."""
        self._cancel()
        self._refused = True
        hook = type(self).on_refusal
        if hook is not None:
            hook(reason)
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app's own late answer is dropped
        if status is None or not self.transport.can_write_eof():
            if status is not None:
                self.transport.write(_response(status))
            self.transport.close()
            return
        self.transport.write(_response(status))
        self.transport.write_eof()
        self._timer = self.loop.call_later(self.limits.linger_s, self.transport.close)

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(None, "header_timeout")

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing() or self.transport.get_protocol() is not self or cycle is None:
            return
        if cycle.more_body:
            self._refuse(None if cycle.response_started else 408, "body_timeout")

    # asyncio.Protocol ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too_many_connections")
        else:
            self._arm(self.limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return  # lingering after a refusal: read and dropped
        in_head, messages = self._in_head, self._messages
        super().data_received(data)
        # Counted per read. A read that ends the previous request and starts this head is not counted (where the
        # head starts in it is not known): at most one read (uvloop reads up to 256 KiB) goes uncounted.
        if self._in_head and in_head and messages == self._messages and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, "header_too_large")

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()  # the client is done sending: no need to linger

    # httptools callbacks -------------------------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._arm(self.limits.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel()
        self._in_head, self._head_bytes, self._messages = True, 0, self._messages + 1
        answered_early = self.cycle is not None and self.cycle.response_complete  # e.g. 413 before the body
        super().on_message_complete()
        if answered_early and not self.pipeline and not self.transport.is_closing():
            self._arm(self.limits.header_timeout_s, self._head_timed_out)  # the next request's headers

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if self._in_head and not pipelined and not self.transport.is_closing():
            self._arm(self.limits.header_timeout_s, self._head_timed_out)  # the next request's headers


def guarded_protocol(limits: Limits, on_refusal: Callable[[str], None] | None = None
                     ) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for `uvicorn.run(http=…)` with these limits."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"limits": limits, "on_refusal": staticmethod(on_refusal) if on_refusal else None})
