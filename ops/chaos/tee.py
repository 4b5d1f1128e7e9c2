"""A webhook tee for the `redelivery` scenario: sits between the Stripe simulator and the receiver and delivers
every webhook 1–3 times — the first copy synchronously (its answer goes back to the simulator, so the simulator's
own retries still apply), the extra copies later, at seeded random delays, so copies of different events cross.

Listens on 127.0.0.1 only; the extra copies carry the original body and `Stripe-Signature` unchanged, as a
redelivery by Stripe would.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_FORWARDED = ("Content-Type", "Stripe-Signature", "User-Agent")


class WebhookTee:
    """`start()` then point the simulator at `.url`; `pending()` is 0 once every extra copy is sent."""

    def __init__(self, target_url: str, seed: int, max_copies: int = 3, max_delay_s: float = 3.0) -> None:
        self.target_url = target_url
        self.max_copies = max_copies
        self.max_delay_s = max_delay_s
        self.received = 0
        self.extra_sent = 0
        self.copies_histogram: dict[int, int] = {}
        self._rng = random.Random(f"tee:{seed}")
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, bytes, dict[str, str]]] = []
        self._seq = 0
        self._in_flight = 0
        self._stop = False
        self._client = httpx.Client(timeout=10.0)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._threads = [threading.Thread(target=self._server.serve_forever, name="tee-http", daemon=True),
                         threading.Thread(target=self._sender, name="tee-copies", daemon=True)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"

    def start(self) -> "WebhookTee":
        for t in self._threads:
            t.start()
        return self

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + self._in_flight

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._client.close()

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            resp = self._client.post(self.target_url, content=body, headers=headers)
            return resp.status_code, resp.content
        except (httpx.HTTPError, RuntimeError):  # RuntimeError: the tee is stopping and its client closed
            return 502, b'{"error": "receiver unreachable"}'

    def _accept(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._cond:
            self.received += 1
            copies = self._rng.randint(1, self.max_copies)
            self.copies_histogram[copies] = self.copies_histogram.get(copies, 0) + 1
            for _ in range(copies - 1):
                self._seq += 1
                due = time.monotonic() + self._rng.uniform(0.0, self.max_delay_s)
                heapq.heappush(self._heap, (due, self._seq, body, headers))
            self._cond.notify_all()
        return self._forward(body, headers)

    def _sender(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else 0.5
                    self._cond.wait(max(0.001, min(wait, 0.5)))
                if self._stop:
                    return
                _, _, body, headers = heapq.heappop(self._heap)
                self._in_flight += 1
            self._forward(body, headers)  # an extra copy: its answer does not matter
            with self._cond:
                self._in_flight -= 1
                self.extra_sent += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        tee = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {h: v for h in _FORWARDED if (v := self.headers.get(h)) is not None}
                status, answer = tee._accept(body, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                return

        return Handler
