"""The parameters of a generated scenario. Same parameters (seed included) -> byte-identical event stream."""

from __future__ import annotations

from dataclasses import dataclass, field

import stripe

from .clock import default_start_time

API_VERSION: str = stripe.api_version


@dataclass
class ScenarioParams:
    """What to generate. Delays are scenario seconds; `delay_scale` compresses every story delay."""

    seed: int = 0
    events: int = 1000
    start_time: int = field(default_factory=default_start_time)
    clock: str = "fixed"
    mean_gap: float = 0.5
    tie_rate: float = 0.0
    delay_scale: float = 1.0
    payout_interval: float = 3600.0
    settle_delay: float = 1800.0
    connected_accounts: int = 3
    pending_webhooks: int = 1
    api_version: str = API_VERSION
    failure_rate: float = 0.08
    manual_capture_rate: float = 0.1
    refund_rate: float = 0.08
    dispute_rate: float = 0.03
    invoice_share: float = 0.2
    payout_failure_rate: float = 0.05

    def __post_init__(self) -> None:
        for name in ("tie_rate", "failure_rate", "manual_capture_rate", "refund_rate", "dispute_rate",
                     "invoice_share", "payout_failure_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.events < 0 or self.mean_gap <= 0 or self.delay_scale <= 0 or self.payout_interval <= 0:
            raise ValueError("events must be >= 0; mean_gap, delay_scale and payout_interval > 0")
