"""`generate(params)`: the whole scenario as a lazy stream of records (bounded memory).

Stories arrive until `params.events` events were emitted; then the engine drains: every scheduled step runs,
sweeps continue until every transaction has become available, and every payout ends paid or failed.
"""

from __future__ import annotations

from collections.abc import Iterator

from .connect import connect, deauthorize
from .engine import Engine
from .ledger import Account
from .params import ScenarioParams
from .records import EventRecord, TxnRecord
from .story_invoices import start_invoice
from .story_payments import draw_amount, pick_customer, start_payment
from .story_payouts import sweep

_PLATFORM_SHARE = 0.6


class Scenario(Engine):
    """An engine with story arrivals and periodic payout sweeps."""

    _connected = 0
    _fresh: list[Account] | None = None

    def _connect_due(self) -> None:
        """Connect the next account once its share of `events` is emitted; its first arrival is its own."""
        n = self.p.accounts_connected_during_run
        if self._connected >= n:
            return
        due = self.p.events * (self.p.connect_at + (1.0 - self.p.connect_at) * self._connected / n)
        if self.events_emitted >= due:
            self._connected += 1
            self._fresh = [*(self._fresh or []), connect(self)]

    def _arrival(self) -> None:
        if self.events_emitted >= self.p.events:
            return
        self._connect_due()
        if self._fresh:
            account = self._fresh.pop(0)
        else:
            account = self.accounts[0] if self.chance(_PLATFORM_SHARE) or len(self.accounts) == 1 \
                else self.rng.choice(self.accounts[1:])
        if self.chance(self.p.invoice_share):
            start_invoice(self, account)
        else:
            cust = pick_customer(self, account)
            amount, currency = draw_amount(self)
            start_payment(self, account, cust, amount, currency, None, self.chance(self.p.failure_rate))
        self.at(self.rng.expovariate(1.0 / self.p.mean_gap), Scenario._arrival, story=False)

    def _sweep_all(self) -> None:
        for account in self.accounts:
            sweep(self, account)
        arriving = self.events_emitted < self.p.events
        latest = self.ledger.latest_available_on()
        if arriving or self.story_actions > 0 or (latest is not None and latest >= self.now):
            self.at(self.p.payout_interval * self.p.delay_scale, Scenario._sweep_all, story=False)

    def records(self) -> Iterator[EventRecord | TxnRecord]:
        """Start the arrivals and the sweeps, and yield every record in order."""
        self.at(0.0, Scenario._arrival, story=False)
        self.at(self.p.payout_interval * self.p.delay_scale, Scenario._sweep_all, story=False)
        yield from self.run()
        leaving = self.accounts[1:][::-1][:self.p.accounts_deauthorized_at_end]  # the newest first
        for account in leaving:
            deauthorize(self, account)
        yield from self._out
        self._out.clear()


def generate(params: ScenarioParams) -> Iterator[EventRecord | TxnRecord]:
    """Every record of the scenario, lazily; the same params give the same records byte for byte."""
    return Scenario(params).records()


def unpaid(scenario: Scenario) -> dict[str | None, list[dict[str, object]]]:
    """After the run: transactions never paid out (a negative or not-yet-available balance), by account."""
    return scenario.ledger.unswept()


__all__ = ["Account", "Scenario", "generate", "unpaid"]
