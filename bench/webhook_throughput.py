"""Benchmark (not a test): verified webhooks/s and acknowledgment latency of `paysync webhook`.

Starts the receiver as a subprocess against a real broker (`KAFKA_BOOTSTRAP_SERVERS`, default
127.0.0.1:19092) with a fresh topic prefix, then drives it with a lean keep-alive HTTP/1.1 client
(pre-signed Stripe-style bodies): (1) as fast as possible over many connections, (2) at a fixed
rate. Every 200 is an acknowledgment after the broker's `acks=all`. Prints the figures.

    .venv/bin/python bench/webhook_throughput.py [--total 30000] [--connections 64] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import stripe

from paysync.net import free_port
from paysync.settings import KafkaConnection, TopicSettings, settings_env
from paysync.topics import create_topics
from producers.webhook.settings import WebhookSettings

REPO = Path(__file__).resolve().parents[1]
SECRET = "whsec_bench_" + uuid.uuid4().hex[:12]


def _request(port: int, n: int) -> bytes:
    charge = f"ch_{uuid.uuid4().hex[:14]}"
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "api_version": "2026-10-28.endive",
             "created": int(time.time()), "livemode": False, "type": "charge.succeeded", "pending_webhooks": 1,
             "data": {"object": {"id": charge, "object": "charge", "amount": 1000 + n, "currency": "usd",
                                 "status": "succeeded", "customer": "cus_bench", "description": "x" * 600}}}
    body = json.dumps(event)
    sig = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    return (f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Stripe-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _max_throughput(port: int, reqs: list[bytes], connections: int) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(reqs)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for req in queue:
            t0 = time.perf_counter()
            status = await _exchange(reader, writer, req)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - t0, latencies, errors


async def _fixed_rate(port: int, reqs: list[bytes], rate: float, connections: int) -> tuple[list[float], int]:
    """Open-loop: request i is due at i/rate; latency counts from its due time (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for conn in conns:
        free.put_nowait(conn)
    start = time.perf_counter()

    async def one(i: int, req: bytes) -> None:
        nonlocal errors
        due = start + i / rate
        conn = await free.get()
        status = await _exchange(*conn, req)
        free.put_nowait(conn)
        latencies.append(time.perf_counter() - due)
        errors += status != 200

    tasks = []
    for i, req in enumerate(reqs):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, req)))
    await asyncio.gather(*tasks)
    for _, writer in conns:
        writer.close()
    return latencies, errors


def _pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=1000)[int(p * 10) - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total", type=int, default=30000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    create_topics({"bootstrap.servers": bootstrap}, prefix, partitions=6)
    port = free_port()
    env = {**os.environ, **settings_env(KafkaConnection, bootstrap_servers=bootstrap),
           **settings_env(TopicSettings, prefix=prefix), **settings_env(WebhookSettings, webhook_secrets=SECRET)}
    proc = subprocess.Popen([str(REPO / ".venv/bin/paysync"), "webhook", "--port", str(port), "--metrics-port", "0",
                             "--log-level", "WARNING"], env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    print("receiver did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        import uvloop

        warm = [_request(port, i) for i in range(2000)]
        uvloop.run(_max_throughput(port, warm, args.connections))
        reqs = [_request(port, i) for i in range(args.total)]
        elapsed, lat, errors = uvloop.run(_max_throughput(port, reqs, args.connections))
        print(f"max throughput: {len(reqs)} verified webhooks in {elapsed:.2f} s = {len(reqs) / elapsed:,.0f}/s "
              f"({args.connections} connections; p50 {_pct(lat, 50):.1f} ms, p99 {_pct(lat, 99):.1f} ms; "
              f"non-200: {errors})")
        fixed = [_request(port, i) for i in range(int(args.rate * args.seconds))]
        lat, errors = uvloop.run(_fixed_rate(port, fixed, args.rate, args.connections))
        print(f"fixed rate {args.rate:,.0f}/s for {args.seconds:.0f} s: p50 {_pct(lat, 50):.1f} ms, "
              f"p99 {_pct(lat, 99):.1f} ms, max {max(lat) * 1000:.1f} ms (non-200: {errors})")
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
