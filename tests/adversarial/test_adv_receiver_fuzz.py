"""Adversarial HTTP against a running `paysync webhook` process, with REAL Stripe events mutated.

Every request is tracked: which ones were validly signed (exact body, a known secret, a fresh
timestamp, a `v1` scheme, within the size limit). Afterwards `stripe.events` is read back: it must
hold exactly the validly signed events that were answered 200, each once, and nothing else. The
receiver must never answer 500 and must still be alive at the end.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from adversarial_helpers import (
    OLD_SECRET, SECRET, ReceiverProcess, chunks, fresh, read_raw, real_events, signature,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paysync.codec import AvroCodec
from paysync.topics import STRIPE_EVENTS, create_topics

pytestmark = pytest.mark.kafka

MAX_BODY = 65536
REFUSALS = {400, 413, 415}


@pytest.fixture(scope="module")
def receiver(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReceiverProcess, str]]:
    prefix = f"adv{uuid.uuid4().hex[:8]}."
    create_topics({"bootstrap.servers": kafka_bootstrap}, prefix, partitions=2)
    proc = ReceiverProcess(kafka_bootstrap, prefix, tmp_path_factory.mktemp("recv") / "webhook.log",
                           PAYSYNC_WEBHOOK_MAX_BODY_BYTES=str(MAX_BODY))
    try:
        proc.wait_ready()
        yield proc, prefix
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    found = real_events()
    if not found:
        pytest.skip("../shared/fixtures/stripe is not present")
    return found


@dataclass
class Request:
    """One HTTP request to send; `valid` = validly signed and acceptable (None: either answer is right)."""

    body: bytes | Callable[[], Iterator[bytes]]
    headers: list[tuple[str, str]]
    valid: bool | None


JSON = ("Content-Type", "application/json")


def _sig(body: bytes, secret: str = SECRET, **kw: Any) -> tuple[str, str]:
    return ("Stripe-Signature", signature(body, secret, **kw))


# Each mutation: (name, build(body utf-8, data) -> Request). `data` is a hypothesis draw for positions/bytes.
def _flip(body: bytes, d: Any) -> Request:
    i = d.draw(st.integers(0, len(body) - 1))
    mutated = body[:i] + bytes([body[i] ^ d.draw(st.integers(1, 255))]) + body[i + 1:]
    return Request(mutated, [JSON, _sig(body)], False)


def _truncate(body: bytes, d: Any) -> Request:
    return Request(body[:d.draw(st.integers(0, len(body) - 1))], [JSON, _sig(body)], False)


def _append(body: bytes, d: Any) -> Request:
    return Request(body + d.draw(st.binary(min_size=1, max_size=16)), [JSON, _sig(body)], False)


def _latin1(body: bytes, d: Any) -> Request:
    text = body.decode("utf-8")
    encoded = text.encode("latin-1", "replace")
    signed_over = body if d.draw(st.booleans()) else encoded  # a forged re-encoding, or signed but not UTF-8
    # an ASCII-only body is the same bytes in latin-1: then it is still validly signed (the charset is ignored)
    return Request(encoded, [("Content-Type", "application/json; charset=latin-1"), _sig(signed_over)],
                   encoded == body)


def _utf16(body: bytes, d: Any) -> Request:
    encoded = body.decode("utf-8").encode(d.draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    signed_over = body if d.draw(st.booleans()) else encoded
    return Request(encoded, [("Content-Type", "application/json; charset=utf-16"), _sig(signed_over)], False)


def _gzip(body: bytes, d: Any) -> Request:
    packed = gzip.compress(body)
    signed_over = body if d.draw(st.booleans()) else packed
    return Request(packed, [JSON, ("Content-Encoding", "gzip"), _sig(signed_over)], False)


def _content_type(body: bytes, d: Any) -> Request:
    ctype = d.draw(st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "", "application/jsonx",
                                    "multipart/form-data; boundary=x", "json", "application/problem+json"]))
    return Request(body, [("Content-Type", ctype), _sig(body)] if ctype else [_sig(body)], False)


def _wrong_secret(body: bytes, d: Any) -> Request:
    secret = d.draw(st.sampled_from(["whsec_" + uuid.uuid4().hex, SECRET + "x", SECRET[:-1], "", "sk_test_x"]))
    return Request(body, [JSON, _sig(body, secret or "empty")], False)


def _v0_only(body: bytes, d: Any) -> Request:
    return Request(body, [JSON, _sig(body, scheme=d.draw(st.sampled_from(["v0", "V1", "v2", "v1 ", "v"])))],
                   False)


def _stale(body: bytes, d: Any) -> Request:
    skew = d.draw(st.sampled_from([-301, -400, -3600, -86400 * 30, 61, 120, 86400, 10**11]))
    return Request(body, [JSON, _sig(body, timestamp=int(time.time()) + skew)], False)


def _malformed_header(body: bytes, d: Any) -> Request:
    good = signature(body, SECRET)
    t_part, v_part = good.split(",")
    value = d.draw(st.sampled_from([
        v_part, t_part, f"t=abc,{v_part}", f"t=-5,{v_part}", f"t={t_part[2:]}0,{v_part}", "", ",,,,", "t=,v1=",
        f"{t_part},v1={'0' * 64}", good.upper(), good.replace("v1=", "v1 ="), "x" * 8000,
        f"{t_part},v1={v_part[3:-1]}",
    ]))
    return Request(body, [JSON, ("Stripe-Signature", value)], False)


def _duplicate_headers(body: bytes, d: Any) -> Request:
    good = _sig(body)
    bad = ("Stripe-Signature", d.draw(st.sampled_from(["t=1,v1=00", "garbage", signature(body, "whsec_wrong")])))
    headers = [JSON, good, bad] if d.draw(st.booleans()) else [JSON, bad, good]
    return Request(body, headers, None)  # validly signed by one of its headers: either answer, never both


def _oversized(body: bytes, d: Any) -> Request:
    event = json.loads(body)
    event["data"]["object"]["metadata"] = {"pad": "x" * (MAX_BODY + d.draw(st.integers(1, 5000)))}
    big = json.dumps(event).encode()
    payload: bytes | Callable[[], Iterator[bytes]] = big
    if d.draw(st.booleans()):
        payload = lambda: chunks(big, 8192)  # noqa: E731 - chunked, no Content-Length
    return Request(payload, [JSON, _sig(big)], False)


def _valid(body: bytes, d: Any) -> Request:
    secret = d.draw(st.sampled_from([SECRET, OLD_SECRET]))
    ctype = d.draw(st.sampled_from(["application/json", "application/json; charset=utf-8", "Application/JSON"]))
    sig = signature(body, secret)
    if d.draw(st.booleans()):  # several v1 (one right), a v0, spaces: all tolerated
        t_part, v_part = sig.split(",")
        sig = f"{t_part}, v0={'a' * 64}, v1={'b' * 64}, {v_part}"
    payload: bytes | Callable[[], Iterator[bytes]] = body
    if d.draw(st.booleans()):
        size = d.draw(st.integers(1, 700))
        payload = lambda: chunks(body, size)  # noqa: E731
    return Request(payload, [("Content-Type", ctype), ("Stripe-Signature", sig), ("X-Noise", "\u00c3\u00a9")],
                   True)


MUTATIONS: dict[str, Callable[[bytes, Any], Request]] = {
    "flip": _flip, "truncate": _truncate, "append": _append, "latin1": _latin1, "utf16": _utf16, "gzip": _gzip,
    "content_type": _content_type, "wrong_secret": _wrong_secret, "v0_only": _v0_only, "stale": _stale,
    "malformed_header": _malformed_header, "duplicate_headers": _duplicate_headers, "oversized": _oversized,
    "valid": _valid,
}


def _send(client: httpx.Client, url: str, req: Request) -> httpx.Response:
    content = req.body() if callable(req.body) else req.body
    headers = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in req.headers]
    return client.post(url, content=content, headers=headers)


def test_mutated_real_events_never_500_and_only_valid_ones_are_published(
        receiver: tuple[ReceiverProcess, str], events: list[dict[str, Any]], kafka_bootstrap: str) -> None:
    proc, prefix = receiver
    ledger: list[tuple[str, str, int, bool | None]] = []  # (event id, mutation, status, valid)
    client = httpx.Client(timeout=15)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(index=st.integers(0, len(events) - 1), name=st.sampled_from(sorted(MUTATIONS)), data=st.data(),
           unicode=st.booleans())
    def run(index: int, name: str, data: Any, unicode: bool) -> None:
        event = fresh(events[index])
        if unicode:
            event["data"]["object"]["description"] = "Café Zürich — 東京 مرحبا 🎉\u200b"
        body = json.dumps(event, ensure_ascii=not unicode).encode("utf-8")
        req = MUTATIONS[name](body, data)
        resp = _send(client, proc.url, req)
        assert resp.status_code != 500
        answer = resp.json()
        if req.valid is True:
            assert resp.status_code == 200, (name, answer)
            assert answer["event_id"] == event["id"]
        elif req.valid is False:
            assert resp.status_code in REFUSALS, (name, resp.status_code, answer)
            assert answer["error"] and answer["message"]
        else:
            assert resp.status_code in REFUSALS | {200}, (name, answer)
        ledger.append((event["id"], name, resp.status_code, req.valid))

    try:
        run()
    finally:
        client.close()
    assert proc.alive()
    assert len(ledger) >= 100
    names_seen = {name for _, name, _, _ in ledger}
    assert len(names_seen) >= 10, names_seen  # the draw covered most mutations

    accepted = {eid for eid, _, status, _ in ledger if status == 200}
    codec = AvroCodec()
    published = [codec.decode(m.value(), STRIPE_EVENTS.schema)["event_id"]
                 for m in read_raw(kafka_bootstrap, STRIPE_EVENTS.full_name(prefix))]
    assert len(published) == len(set(published)), "an event was published twice"
    assert set(published) == accepted
    never_valid = {eid for eid, _, _, valid in ledger if valid is False}
    assert not never_valid & set(published)


def _raw_http(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    """Send raw bytes on a fresh connection; return the first response (or b"" when the server just closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            pass
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                head, sep, rest = out.partition(b"\r\n\r\n")
                if sep:
                    length = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")]
                    if length and len(rest) >= length[0]:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def _status_of(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/"):
        return None
    return int(raw.split(b" ", 2)[1])


def test_broken_http_huge_headers_and_lying_lengths(
        receiver: tuple[ReceiverProcess, str], events: list[dict[str, Any]], kafka_bootstrap: str) -> None:
    """Malformed HTTP framing never gets a 500 or publishes anything, and the receiver keeps serving."""
    proc, prefix = receiver
    event = fresh(events[0])
    body = json.dumps(event).encode()
    sig = signature(body, SECRET).encode()
    head = b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nStripe-Signature: " + sig

    cases = {
        "huge_header": head + b"\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        "many_headers": head + b"".join(b"\r\nX-H%d: v" % i for i in range(5000))
        + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        "length_too_long": head + b"\r\nContent-Length: %d\r\n\r\n" % (len(body) + 50) + body,
        "length_too_short": head + b"\r\nContent-Length: %d\r\n\r\n" % (len(body) - 50) + body,
        "length_negative": head + b"\r\nContent-Length: -1\r\n\r\n" + body,
        "length_huge": head + b"\r\nContent-Length: 99999999999999999999\r\n\r\n" + body,
        "length_twice": head + b"\r\nContent-Length: %d\r\nContent-Length: 3\r\n\r\n" % len(body) + body,
        "bad_chunked": head + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + body + b"\r\n0\r\n\r\n",
        "chunked_and_length": head + b"\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n%x\r\n" % len(body)
        + body + b"\r\n0\r\n\r\n",
        "chunked_truncated": head + b"\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body[:100],
        "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
        "bad_method_line": b"POST\r\n\r\n",
        "non_ascii_header": head + b"\r\nX-\xff\xfe: \xc3\x28\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        "nul_in_signature": b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Stripe-Signature: t=1\x00,v1=aa\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
    }
    statuses: dict[str, int | None] = {}
    for name, payload in cases.items():
        statuses[name] = _status_of(_raw_http(proc.port, payload))
        assert statuses[name] is None or statuses[name] < 500, (name, statuses[name])
        assert proc.alive(), name
    assert statuses["length_negative"] != 200 and statuses["bad_method_line"] != 200

    # the receiver still takes a valid event
    good = fresh(events[0])
    good_body = json.dumps(good).encode()
    resp = httpx.post(proc.url, content=good_body, headers=[JSON, _sig(good_body)], timeout=15)
    assert resp.status_code == 200, resp.text
    codec = AvroCodec()
    published = [codec.decode(m.value(), STRIPE_EVENTS.schema)["event_id"]
                 for m in read_raw(kafka_bootstrap, STRIPE_EVENTS.full_name(prefix))]
    assert published.count(good["id"]) == 1
    # the framed event was published at most as often as a framing answered 200 (the whole signed body read)
    assert published.count(event["id"]) <= sum(1 for s in statuses.values() if s == 200), statuses
