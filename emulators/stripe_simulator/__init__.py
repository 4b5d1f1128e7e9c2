"""A stateful Stripe account simulator: consistent objects, events, balances and payouts for a seed; signed
webhooks with realistic faults; the read API the pipeline uses; a truth export for reconciliation.

In-process use: `start_simulator(...) -> SimulatorHandle` (a subprocess); offline: `generate(ScenarioParams(...))`.
"""

from __future__ import annotations

from .handle import SimulatorError, SimulatorHandle, start_simulator
from .params import API_VERSION, ScenarioParams
from .records import EventRecord, TxnRecord
from .scenario import generate
from .webhooks import signature_header

__all__ = ["API_VERSION", "EventRecord", "ScenarioParams", "SimulatorError", "SimulatorHandle", "TxnRecord",
           "generate", "signature_header", "start_simulator"]
