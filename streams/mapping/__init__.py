"""Old import path of the mappings, kept for bench/naive_receiver.py and tests/adversarial: import `core` instead.

Everything here is `core`'s (`core.mapping` dispatches through `core.registry`); delete this package once
those callers import `core.mapping` / `core.common` / `core.config` directly.
"""

from __future__ import annotations

from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.mapping import SUPPORTED_OBJECT_TYPES, map_object

__all__ = ["EventMeta", "MappingConfig", "MappingError", "SUPPORTED_OBJECT_TYPES", "map_object"]
