"""`paysync.net.free_port` hands out ports no outgoing connection can take before the caller binds them.

Fails on 08dcdcd: it returned what `bind(("127.0.0.1", 0))` gives, a port of the kernel's ephemeral range, which
the local end of any connection may take in the meantime. In the first CI run with parallel workers
(2026-12-04) a Stripe simulator started on such a port found it taken ("[Errno 98] ... address already in use").
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from paysync.net import free_port

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def test_ports_lie_outside_the_ephemeral_range_and_are_free() -> None:
    if not RANGE.exists():
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range: not Linux")
    low, high = (int(p) for p in RANGE.read_text().split())
    ports = [free_port() for _ in range(200)]
    assert not [p for p in ports if low <= p <= high]
    assert len(set(ports)) == len(ports)  # never the same port twice in one process
    for port in ports[:20]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_never_handed_out() -> None:
    listeners = []
    try:
        for _ in range(50):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", free_port()))
            sock.listen()
            listeners.append(sock)
        taken = {s.getsockname()[1] for s in listeners}
        assert not taken & {free_port() for _ in range(500)}
    finally:
        for sock in listeners:
            sock.close()


def test_a_thousand_picks_in_a_row_all_differ() -> None:
    """Callers take several ports before binding any (a broker's client and controller ports, a cluster's six):
    a plain random pick repeated one now and then ("ports must all differ", tests/foundation/test_broker_cli.py)."""
    ports = [free_port() for _ in range(1_000)]
    assert len(set(ports)) == len(ports)
