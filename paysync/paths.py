"""Where paysync finds its own files and keeps its local state."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
SCHEMAS_DIR: Path = REPO_ROOT / "schemas"
SALESFORCE_PROJECT_DIR: Path = REPO_ROOT / "salesforce"  # the SFDX project (sfdx-project.json)
# The main package's source folder: every object, field and permission set that deploys to any org.
SALESFORCE_METADATA_DIR: Path = SALESFORCE_PROJECT_DIR / "force-app" / "main" / "default"
# The optional Orders package's source folder: deploys only where Orders are enabled (OrderSettings.enableOrders).
SALESFORCE_ORDERS_METADATA_DIR: Path = SALESFORCE_PROJECT_DIR / "orders" / "main" / "default"
# Every package directory's source folder, in sfdx-project.json order (main first, Orders second).
SALESFORCE_PACKAGE_DIRS: tuple[Path, ...] = (SALESFORCE_METADATA_DIR, SALESFORCE_ORDERS_METADATA_DIR)


def state_dir() -> Path:
    """The folder for local state (broker data, emulator databases, pids); `PAYSYNC_HOME` overrides it."""
    return Path(os.environ.get("PAYSYNC_HOME", REPO_ROOT / ".paysync")).resolve()


def cache_dir() -> Path:
    """The folder for downloaded artefacts (Kafka jars); `PAYSYNC_CACHE_DIR` overrides it."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "paysync"
    return Path(os.environ.get("PAYSYNC_CACHE_DIR", default)).resolve()
