"""Compatibility only: the local broker moved to `ops.broker` (a development tool) and `free_port` to `paysync.net`.

Kept for `tests/streams_app/` until they import `paysync.net.free_port`; then delete this module.
"""

from __future__ import annotations

from paysync.net import free_port

__all__ = ["free_port"]
