"""The receiver facing the internet (issue 18), tried as an attacker would against a real `paysync webhook`
process and broker: a 1 MiB header is refused with 431 before it is read whole, thousands of half-sent headers
are closed at the header deadline while signed webhooks beside them are answered promptly, a body that never
arrives gets 408, and connections above the cap get 503."""

from __future__ import annotations

import json
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from producer_helpers import Receiver, make_event, signed_headers

SLOW = 2000
HEAD = b"POST /webhooks/stripe HTTP/1.1\r\nHost: receiver\r\nContent-Type: appl"  # half a header, never finished


def _fds(receiver: Receiver) -> int:
    return len(list(Path(f"/proc/{receiver.proc.pid}/fd").iterdir()))


def _rss_kib(receiver: Receiver) -> int:
    for line in Path(f"/proc/{receiver.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _connect(receiver: Receiver) -> socket.socket:
    return socket.create_connection(("127.0.0.1", receiver.port), timeout=10)


def _read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server sends until it closes (or resets) the connection."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _read_response(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """One whole response (headers and its Content-Length body) on a kept-alive connection."""
    sock.settimeout(timeout)
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if len(rest) >= (length[0] if length else 0):
                return data
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data[:80]!r}"
        data += chunk


def _webhook(client: httpx.Client, receiver: Receiver) -> tuple[int, float]:
    body = json.dumps(make_event())
    started = time.monotonic()
    response = client.post(receiver.url, content=body, headers=signed_headers(body))
    return response.status_code, time.monotonic() - started


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard < needed:
            pytest.skip(f"{needed} sockets need `ulimit -n` >= {needed} (hard limit {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver], kafka_bootstrap: str, topics: str) -> Receiver:
    return start_receiver(kafka_bootstrap, topics, PAYSYNC_WEBHOOK_HEADER_TIMEOUT_S="4",
                          PAYSYNC_WEBHOOK_BODY_TIMEOUT_S="2")


def test_an_oversized_header_is_refused_with_431_before_it_is_read_whole(receiver: Receiver) -> None:
    # 32 KiB of one header, and the header block never ends: only a server counting as it reads can answer
    sock = _connect(receiver)
    sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: r\r\nX-Big: " + b"a" * 32 * 1024)
    answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert b"connection: close" in answer.lower()
    sock.close()

    # 20 clients pushing a whole 1 MiB header each: refused, the connections closed, the process not grown by them
    before = _rss_kib(receiver)
    answers: list[bytes] = []

    def push() -> None:
        s = _connect(receiver)
        try:
            s.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: r\r\nX-Big: " + b"b" * 1024 * 1024 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answers.append(_read_all(s))
        s.close()

    threads = [threading.Thread(target=push) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == 20 and all(a.startswith(b"HTTP/1.1 431 ") for a in answers), [a[:40] for a in answers]
    assert _rss_kib(receiver) - before < 10 * 1024, "20 MiB of headers held in memory"
    with httpx.Client(timeout=10) as client:
        assert _webhook(client, receiver)[0] == 200


def test_thousands_of_half_sent_headers_are_closed_while_webhooks_keep_their_latency(receiver: Receiver) -> None:
    _raise_fd_limit(SLOW + 512)
    baseline = _fds(receiver)
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW):
            s = _connect(receiver)
            s.sendall(HEAD)
            slow.append(s)
        opened = time.monotonic()
        with httpx.Client(timeout=10) as client:
            answers = [_webhook(client, receiver) for _ in range(5)]
        assert [status for status, _ in answers] == [200] * 5
        assert max(latency for _, latency in answers) < 2.0, answers
        assert _fds(receiver) >= baseline + SLOW // 2  # the slow ones really are held open (for now)

        # every slow connection is closed by the server at its header deadline (4 s), none later than 12 s
        selector = selectors.DefaultSelector()
        for s in slow:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        closed = 0
        while closed < SLOW and time.monotonic() - opened < 12:
            for key, _ in selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"", data[:80]  # closed, not answered
                selector.unregister(sock)
                closed += 1
        assert closed == SLOW, f"{SLOW - closed} half-sent headers still open after 12 s"
        assert time.monotonic() - opened > 2.5  # not before the deadline
        assert _fds(receiver) < baseline + 50  # and the receiver's descriptors are free again
    finally:
        for s in slow:
            s.close()


def test_a_trickled_header_is_closed_at_the_deadline_although_bytes_keep_coming(receiver: Receiver) -> None:
    sock = _connect(receiver)
    opened = time.monotonic()
    sock.settimeout(0.5)
    data = None
    for ch in (HEAD + b"ication/json\r\nX-Pad: " + b"p" * 200):  # one byte every 0.5 s: 15 s of header
        try:
            sock.send(bytes([ch]))
            data = sock.recv(4096)
            break
        except (socket.timeout, TimeoutError):
            continue
        except (BrokenPipeError, ConnectionResetError):
            data = b""
            break
    assert data == b"" and time.monotonic() - opened < 8
    sock.close()


def test_a_body_that_does_not_arrive_gets_408(receiver: Receiver) -> None:
    body = json.dumps(make_event())
    headers = signed_headers(body)
    sock = _connect(receiver)
    head = (f"POST /webhooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: {headers['Content-Type']}\r\n"
            f"Stripe-Signature: {headers['Stripe-Signature']}\r\nContent-Length: {len(body)}\r\n\r\n")
    started = time.monotonic()
    sock.sendall(head.encode() + body.encode()[:20])
    answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert 1.5 < time.monotonic() - started < 6
    sock.close()


def test_connections_above_the_cap_get_503(start_receiver: Callable[..., Receiver], kafka_bootstrap: str,
                                           topics: str) -> None:
    receiver = start_receiver(kafka_bootstrap, topics, PAYSYNC_WEBHOOK_MAX_CONNECTIONS="20")
    held = [_connect(receiver) for _ in range(20)]
    try:
        with httpx.Client(timeout=10) as client:
            extra = _connect(receiver)
            assert _read_all(extra).startswith(b"HTTP/1.1 503 ")
            extra.close()
            for s in held:  # hang up, and see the server close its side: the slots are free again
                s.shutdown(socket.SHUT_WR)
                assert _read_all(s) == b""
                s.close()
            held.clear()
            status, latency = _webhook(client, receiver)
            assert status == 200 and latency < 2.0
    finally:
        for s in held:
            s.close()


def test_a_kept_alive_connection_gets_the_header_deadline_again(receiver: Receiver) -> None:
    """After a valid webhook on a kept-alive connection, half of the next request's header is cut at the deadline
    (uvicorn's keep-alive timer stops at the first byte of it)."""
    body = json.dumps(make_event())
    headers = signed_headers(body)
    sock = _connect(receiver)
    sock.sendall((f"POST /webhooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: {headers['Content-Type']}\r\n"
                  f"Stripe-Signature: {headers['Stripe-Signature']}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
                  ).encode())
    first = _read_response(sock)
    assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first.lower()
    sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHo")
    started = time.monotonic()
    assert _read_all(sock) == b""
    assert 3 < time.monotonic() - started < 8
    sock.close()


def test_limits_are_validated_and_the_fd_limit_checked() -> None:
    from pydantic import ValidationError

    from producers.webhook.cli import ensure_fd_limit
    from producers.webhook.settings import WebhookSettings

    for name, bad in (("webhook_max_header_bytes", 100), ("webhook_header_timeout_s", 0),
                      ("webhook_body_timeout_s", -1), ("webhook_max_connections", 1)):
        with pytest.raises(ValidationError):
            WebhookSettings(**{name: bad})
    limits = WebhookSettings(webhook_max_header_bytes=8192, webhook_max_connections=100).limits()
    assert limits.max_header_bytes == 8192 and limits.max_connections == 100 and limits.header_timeout_s == 10
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        problem = ensure_fd_limit(hard)  # the cap plus its headroom cannot fit under the hard limit
        assert problem is not None and "PAYSYNC_WEBHOOK_MAX_CONNECTIONS" in problem
    assert ensure_fd_limit(16) is None


def test_after_an_early_413_the_kept_alive_connection_serves_the_next_request(receiver: Receiver) -> None:
    """The receiver answers 413 from Content-Length before the body arrives; the rest of that body and the next
    request's head may share a read: the body's bytes are not counted as header bytes (no false 431), and the next
    request still gets the header deadline."""
    big = 2 * 1024 * 1024
    sock = _connect(receiver)
    sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % big + b"x" * (big - 40_000))
    assert _read_response(sock).startswith(b"HTTP/1.1 413 ")
    body = json.dumps(make_event())
    headers = signed_headers(body)
    following = (f"POST /webhooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: {headers['Content-Type']}\r\n"
                 f"Stripe-Signature: {headers['Stripe-Signature']}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
    sock.sendall(b"x" * 40_000 + following[:60])  # the body's end and the start of the next head, together
    sock.sendall(following[60:])
    assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
    sock.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHo")
    started = time.monotonic()
    assert _read_all(sock) == b"" and time.monotonic() - started < 8
    sock.close()
