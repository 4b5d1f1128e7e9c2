"""A webhook receiver for the tests: records every POST (body, signature header); can fail on purpose."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Listens on 127.0.0.1; `status_for(body, nth_delivery_of_that_body)` picks the answer (default 200)."""

    def __init__(self, status_for: Callable[[bytes, int], int] | None = None) -> None:
        self.deliveries: list[tuple[bytes, str]] = []
        self.status_for = status_for or (lambda body, n: 200)
        self._seen: dict[bytes, int] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer._lock:
                    n = outer._seen.get(body, 0)
                    outer._seen[body] = n + 1
                    outer.deliveries.append((body, self.headers.get("Stripe-Signature", "")))
                status = outer.status_for(body, n)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the server down."""
        self.server.shutdown()
        self.server.server_close()
