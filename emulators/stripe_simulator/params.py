"""The parameters of a generated scenario. Same parameters (seed included) -> byte-identical event stream."""

from __future__ import annotations

from dataclasses import dataclass, field

import stripe

from .clock import default_start_time

API_VERSION: str = stripe.api_version
# An API version from before basil (2025-03-31), whose invoices still carry `charge`/`payment_intent`/`paid` and whose
# charges and payment intents carry `invoice` (docs.stripe.com changelog "Adds support for multiple (partial)
# payments on invoices": "Removed the payment_intent, charge, paid, and paid_out_of_band fields from the Invoice
# object. Removed the invoice field from the PaymentIntent and Charge objects.").
LEGACY_API_VERSION = "2024-06-20"


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
    # -- issue 19: the account as it really is (each on by default at a realistic share) ----------------------
    partial_capture_rate: float = 0.3  # of manual-capture payments, captured for less than authorised
    appeal_rate: float = 0.3  # of chargebacks whose first decision goes against the merchant, appealed
    manual_payout_rate: float = 0.05  # 1 in 20 payouts created by the merchant (`automatic=false`)
    instant_payout_share: float = 0.3  # of manual payouts, `method=instant`
    reconciliation_delay: float = 1800.0  # seconds after `payout.paid` until `payout.reconciliation_completed`
    draft_delete_rate: float = 0.1  # of invoices, deleted while still drafts (`invoice.deleted`)
    # -- issue 15: event destinations and Connect accounts joining during a run (each off by default) -----------
    thin_event_share: float = 0.0  # of events, delivered to the webhook as thin events (`thin.py`); demo: 0.2
    accounts_connected_during_run: int = 0  # Connect accounts authorizing the platform mid-run (`connect.py`)
    connect_at: float = 0.5  # the share of `events` emitted when the first of them connects
    accounts_deauthorized_at_end: int = 0  # connected accounts leaving after the last step (newest first)

    def __post_init__(self) -> None:
        for name in ("tie_rate", "failure_rate", "manual_capture_rate", "refund_rate", "dispute_rate",
                     "invoice_share", "payout_failure_rate", "partial_capture_rate", "appeal_rate",
                     "manual_payout_rate", "instant_payout_share", "draft_delete_rate", "thin_event_share",
                     "connect_at"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.events < 0 or self.mean_gap <= 0 or self.delay_scale <= 0 or self.payout_interval <= 0:
            raise ValueError("events must be >= 0; mean_gap, delay_scale and payout_interval > 0")
        if self.reconciliation_delay < 0:
            raise ValueError("reconciliation_delay must be >= 0")
        if self.accounts_connected_during_run < 0 or self.accounts_deauthorized_at_end < 0:
            raise ValueError("accounts_connected_during_run and accounts_deauthorized_at_end must be >= 0")
        if self.accounts_deauthorized_at_end > self.connected_accounts + self.accounts_connected_during_run:
            raise ValueError("accounts_deauthorized_at_end exceeds the connected accounts")
