"""Local networking helpers every component and test harness may use."""

from __future__ import annotations

import random
import socket
import threading
from collections import deque
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000  # below this lie the ports of well-known services
_PICKER = random.SystemRandom()  # not the `random` module's state, which tests and simulators seed
_RECENT: deque[int] = deque(maxlen=1024)  # handed out lately by this process: its callers may not have bound them yet
_LOCK = threading.Lock()


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


def _pick(ranges: list[tuple[int, int]]) -> int:
    """A port drawn uniformly from the union of the (inclusive) `ranges`."""
    index = _PICKER.randrange(sum(high - low + 1 for low, high in ranges))
    for low, high in ranges:
        if index <= high - low:
            return low + index
        index -= high - low + 1
    raise AssertionError("unreachable: index beyond the ranges")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the kernel's ephemeral range, and not one
    this process handed out among its last 1,024.

    The caller binds it later, so it must stay free until then: a port the kernel would also hand to an outgoing
    connection (what `bind(("127.0.0.1", 0))` returns) can be taken in between by any client connecting out, which
    parallel tests with many Kafka connections made happen. A random pick among the ports below (or above) that
    range also keeps two processes asking at once from getting the same one; `bind(0)` is the fallback.
    """
    low, high = _ephemeral_range()
    ranges = [r for r in ((_LOWEST, low - 1), (high + 1, 65_535)) if r[1] - r[0] >= 1_000]
    with _LOCK:
        for _ in range(100 if ranges else 0):
            port = _pick(ranges)
            if port not in _RECENT and _bindable(port):
                _RECENT.append(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
