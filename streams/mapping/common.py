"""Old import path of `core.common`, kept for bench/naive_receiver.py and tests/adversarial (see the package)."""

from __future__ import annotations

from core.common import EventMeta, text, upsert

__all__ = ["EventMeta", "text", "upsert"]
