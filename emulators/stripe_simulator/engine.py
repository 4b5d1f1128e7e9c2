"""The scenario engine: a heap of timed actions over a simulated clock, emitting events as objects change.

Stories (payments, invoices, payouts) schedule their next steps as actions; an action holds only the objects
its story still needs, so memory is bounded by what is in flight, not by how many events were made.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from typing import Any

from .clock import SimClock
from .fx import CHARGE_CURRENCIES
from .ids import IdFactory
from .ledger import Account, Ledger
from .objects_other import balance_transaction
from .params import ScenarioParams
from .records import EventBuilder, EventRecord, TxnRecord, dumps
from .thin import thin_bodies

Action = Callable[..., None]
SETTLEMENT_CURRENCIES = ("usd", "eur", "usd", "gbp")


class Engine:
    """Runs actions in time order and collects the records they emit."""

    def __init__(self, params: ScenarioParams) -> None:
        self.p = params
        self.rng = random.Random(params.seed)
        self.ids = IdFactory(params.seed)
        self.clock = SimClock(params.start_time, params.clock)
        self.builder = EventBuilder(params.api_version, params.pending_webhooks)
        self.ledger = Ledger()
        self.t = 0.0
        self.now = params.start_time
        self.events_emitted = 0
        self.story_actions = 0
        self._heap: list[tuple[float, int, bool, Action, tuple[Any, ...]]] = []
        self._seq = 0
        self._out: list[EventRecord | TxnRecord] = []
        self.accounts = [Account(None, "usd", self.ids.new("ba"))]
        for i in range(params.connected_accounts):
            currency = SETTLEMENT_CURRENCIES[(i + 1) % len(SETTLEMENT_CURRENCIES)]
            self.accounts.append(Account(self.ids.new("acct"), currency, self.ids.new("ba")))
        self.currencies = CHARGE_CURRENCIES
        self._thin_rng = random.Random(f"thin:{params.seed}")  # its own draws: the scenario's stay as they were

    # -- scheduling ---------------------------------------------------------------------------------------
    def at(self, delay: float, action: Action, *args: Any, story: bool = True) -> None:
        """Run `action(engine, *args)` `delay` scenario seconds from now (scaled by `delay_scale` for story steps)."""
        when = self.t + (delay * self.p.delay_scale if story else delay)
        self._seq += 1
        if story:
            self.story_actions += 1
        heapq.heappush(self._heap, (when, self._seq, story, action, args))

    def run(self) -> Iterator[EventRecord | TxnRecord]:
        """Pop actions in time order until none is left, yielding what each emitted."""
        while self._heap:
            when, _, story, action, args = heapq.heappop(self._heap)
            if story:
                self.story_actions -= 1
            self.t = max(self.t, when)
            created = self.clock.created(self.t)
            if self.now != created and self.p.tie_rate and self.rng.random() < self.p.tie_rate:
                created = self.now  # a same-second tie with the previous step
            self.now = created
            action(self, *args)
            if self._out:
                yield from self._out
                self._out.clear()

    # -- emitting -----------------------------------------------------------------------------------------
    def emit(self, event_type: str, obj: dict[str, Any], account: Account, previous: dict[str, Any] | None = None,
             request: bool = False) -> None:
        """Emit an event whose snapshot is `obj` as it is now."""
        request_id = self.ids.new("req") if request else None
        record = self.builder.build(self.ids.new("evt"), event_type, obj, self.now, account.id, previous, request_id)
        if self.p.thin_event_share and self._thin_rng.random() < self.p.thin_event_share:
            record.thin_json, record.thin_fetched_json = thin_bodies(record, request_id)
        self._out.append(record)
        self.events_emitted += 1

    def last_record_account(self, account_json: str) -> None:
        """Attach the connected account object an `account.application.*` event adds or removes (`connect.py`)."""
        record = self._out[-1]
        assert isinstance(record, EventRecord)
        record.account_json = account_json

    def txn(self, account: Account, txn: dict[str, Any], payout: str | None = None,
            paid_out_by: str | None = None) -> None:
        """Emit a balance transaction's current state (`payout`: listed by `?payout=` from now on)."""
        self._out.append(TxnRecord(txn["id"], txn["created"], txn["type"], account.id, txn["currency"],
                                   txn["source"], payout, txn["net"], dumps(txn), paid_out_by))

    def new_txn(self, account: Account, *, amount: int, fee: int, source: str, txn_type: str, category: str,
                description: str | None, rate: float | None = None, fee_description: str = "Stripe processing fees",
                available_now: bool = False) -> dict[str, Any]:
        """Create, record in the ledger and emit a balance transaction of `account`."""
        available_on = self.now if available_now else self.now + int(self.p.settle_delay * self.p.delay_scale)
        txn = balance_transaction(self.ids.new("txn"), self.now, available_on, amount, fee, account.currency,
                                  description, rate, fee_description, category, source, txn_type)
        if txn_type != "payout":
            self.ledger.add(account.id, txn)
        self.txn(account, txn)
        return txn

    # -- draws --------------------------------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        """True with probability `p`."""
        return self.rng.random() < p

    def between(self, low: float, high: float) -> float:
        """A uniform delay in [low, high]."""
        return self.rng.uniform(low, high)
