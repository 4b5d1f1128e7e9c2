"""The doctor's checklist: one `Check` per verified item, rendered as text or JSON; the exit status.

A check never carries a secret: details name settings and objects, never their values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "fail", "warn", "skip"]
_MARK = {"ok": "[ok]  ", "fail": "[FAIL]", "warn": "[warn]", "skip": "[skip]"}


@dataclass(frozen=True)
class Check:
    """One line of the checklist: `system` (salesforce, stripe, kafka), `name`, `status`, `detail`, `fix`."""

    system: str
    name: str
    status: Status
    detail: str = ""
    fix: str = ""


def ok(system: str, name: str, detail: str = "") -> Check:
    return Check(system, name, "ok", detail)


def fail(system: str, name: str, detail: str, fix: str) -> Check:
    return Check(system, name, "fail", detail, fix)


def warn(system: str, name: str, detail: str, fix: str = "") -> Check:
    return Check(system, name, "warn", detail, fix)


def skip(system: str, name: str, detail: str) -> Check:
    return Check(system, name, "skip", detail)


def exit_status(checks: list[Check]) -> int:
    """1 when any check failed, else 0 (warnings and skips pass)."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def render_text(checks: list[Check]) -> str:
    """The human checklist: one line per check, its detail, and the fix under each failure."""
    lines: list[str] = []
    system = ""
    for c in checks:
        if c.system != system:
            system = c.system
            lines.append(f"{system.capitalize()}")
        lines.append(f"  {_MARK[c.status]} {c.name}" + (f": {c.detail}" if c.detail else ""))
        if c.fix:
            lines.append(f"         fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append(f"\n{len(checks)} checks, {failed} failed" + ("" if failed else ": ready"))
    return "\n".join(lines) + "\n"


def render_json(checks: list[Check]) -> str:
    """`{"ok": bool, "checks": [{system, name, status, detail, fix}, ...]}` for scripts."""
    return json.dumps({"ok": exit_status(checks) == 0, "checks": [asdict(c) for c in checks]}, indent=2) + "\n"
