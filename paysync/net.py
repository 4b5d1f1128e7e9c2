"""Local networking helpers every component and test harness may use."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000  # below this lie the ports of well-known services
_PICKER = random.SystemRandom()  # not the `random` module's state, which tests and simulators seed


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux's default when unknown)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        return 32_768, 60_999
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the kernel's ephemeral range.

    The caller binds it later, so it must stay free until then: a port the kernel would also hand to an outgoing
    connection (what `bind(("127.0.0.1", 0))` returns) can be taken in between by any client connecting out, which
    parallel tests with many Kafka connections made happen. A random pick among the ports below (or above) that
    range also keeps two processes asking at once from getting the same one; `bind(0)` is the fallback.
    """
    low, high = _ephemeral_range()
    choices = [r for r in ((_LOWEST, low - 1), (high + 1, 65_535)) if r[1] - r[0] >= 1_000]
    for _ in range(100 if choices else 0):
        port = _PICKER.randint(*_PICKER.choice(choices))
        if _bindable(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
