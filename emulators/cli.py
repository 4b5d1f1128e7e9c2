"""`paysync emulate salesforce | stripe …`: dispatch to the emulator's own command line."""

from __future__ import annotations

import importlib
import sys

_TARGETS = {
    "salesforce": "emulators.salesforce_emulator.cli",
    "stripe": "emulators.stripe_simulator.cli",
}


def main(argv: list[str]) -> int:
    """Run `paysync emulate NAME ARGS...`."""
    if not argv or argv[0] not in _TARGETS:
        sys.stderr.write("usage: paysync emulate {salesforce|stripe} [ARGS...]\n")
        return 2
    module = importlib.import_module(_TARGETS[argv[0]])
    return int(module.main(argv[1:]) or 0)
