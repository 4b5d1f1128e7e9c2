"""The import rules of pyproject's [tool.importlinter] hold: stages talk only through topics and schemas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from paysync.paths import REPO_ROOT


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--config", str(REPO_ROOT / "pyproject.toml")], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout
