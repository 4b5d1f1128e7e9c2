"""A recording webhook proxy for the cluster scenarios: sits between the Stripe simulator and the receiver, forwards
every delivery once, unchanged, returns the receiver's answer to the simulator (so its retries still apply), and
records when each answer came and what it was. From that: the longest window of non-2xx answers (the receiver's
503s while Kafka elects a new leader) and the event ids the receiver acknowledged (each must be on stripe.events).

Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_FORWARDED = ("Content-Type", "Stripe-Signature", "User-Agent")


@dataclass(frozen=True)
class Answer:
    """One delivery: when it was sent and answered (monotonic seconds), the status (0: no answer), the event id."""

    sent: float
    answered: float
    status: int
    event_id: str


def longest_failure_window(answers: list[Answer]) -> tuple[float, int]:
    """(seconds, failed answers) of the longest run of consecutive non-2xx answers, in the order they were answered:
    from the first failed delivery's sending to the last failed answer of the run (0.0, 0 when none failed)."""
    best = (0.0, 0)
    start: float | None = None
    last, count = 0.0, 0
    for a in sorted(answers, key=lambda x: x.answered):
        if 200 <= a.status < 300:
            if start is not None and last - start > best[0]:
                best = (last - start, count)
            start, count = None, 0
            continue
        start = a.sent if start is None else min(start, a.sent)
        last, count = a.answered, count + 1
    if start is not None and last - start > best[0]:
        best = (last - start, count)
    return best


class DeliveryRecorder:
    """`start()`, point the simulator at `.url`, read `answers()` / `acknowledged()`, `stop()`."""

    def __init__(self, target_url: str) -> None:
        self.target_url = target_url
        self._lock = threading.Lock()
        self._answers: list[Answer] = []
        self._client = httpx.Client(timeout=30.0)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="delivery-recorder", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"

    def start(self) -> "DeliveryRecorder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def acknowledged(self) -> set[str]:
        """Event ids the receiver answered 2xx at least once."""
        return {a.event_id for a in self.answers() if 200 <= a.status < 300 and a.event_id}

    def forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Deliver one webhook to the receiver and record the answer (status 502 to the simulator on no answer)."""
        sent = time.monotonic()
        try:
            event_id = str(json.loads(body).get("id") or "")
        except (ValueError, AttributeError):
            event_id = ""
        try:
            resp = self._client.post(self.target_url, content=body, headers=headers)
            status, content = resp.status_code, resp.content
        except httpx.HTTPError:
            status, content = 0, b'{"error": "receiver unreachable"}'
        with self._lock:
            self._answers.append(Answer(sent, time.monotonic(), status, event_id))
        return (status or 502), content

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k in _FORWARDED if (v := self.headers.get(k))}
                status, content = recorder.forward(body, headers)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the simulator gave up waiting (its own timeout): it retries, the answer is recorded

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                return

        return Handler
