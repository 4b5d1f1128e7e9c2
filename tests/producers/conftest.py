"""Fixtures of the producer tests (defined in producer_helpers.py, next to this file)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from producer_helpers import inproc, start_receiver, topics  # noqa: E402,F401
