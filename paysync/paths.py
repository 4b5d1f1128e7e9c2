"""Where paysync finds its own files and keeps its local state."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
SCHEMAS_DIR: Path = REPO_ROOT / "schemas"
SALESFORCE_METADATA_DIR: Path = REPO_ROOT / "salesforce" / "force-app" / "main" / "default"


def state_dir() -> Path:
    """The folder for local state (broker data, emulator databases, pids); `PAYSYNC_HOME` overrides it."""
    return Path(os.environ.get("PAYSYNC_HOME", REPO_ROOT / ".paysync")).resolve()


def cache_dir() -> Path:
    """The folder for downloaded artefacts (Kafka jars); `PAYSYNC_CACHE_DIR` overrides it."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "paysync"
    return Path(os.environ.get("PAYSYNC_CACHE_DIR", default)).resolve()
