"""Issue 19 point 4 against the Stripe simulator's own stories (no server, no Kafka): the scenario's records are
made visible in order on a simulated clock, the balance poller polls every minute, and at the end the latest
status it published for every balance transaction is the simulator's final one — including the transactions
half the payouts take manually (never listable by `?payout=`) and those no payout ever takes. On main (13bf64a)
the manual payouts' transactions stay `pending`."""

from __future__ import annotations

import json
from typing import Any

from fake_stripe import Entry, FakeCursors, FakePublisher, FakeStripe

from emulators.stripe_simulator.records import EventRecord, TxnRecord
from emulators.stripe_simulator.scenario import Scenario
from emulators.stripe_simulator.params import ScenarioParams
from paysync.codec import AvroCodec
from paysync.outcomes import Outcome
from producers.pollers.balance_poller import BalanceTransactionsPoller
from producers.pollers.listing import HorizonConfig
from producers.stripe_api import StripeApiError

PATH = "/v1/balance_transactions"
CODEC = AvroCodec()


class SimStripe(FakeStripe):
    """The simulator's records as a list API: objects updated in place, `?payout=` as Stripe answers it."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, Entry] = {}
        self.payout_of: dict[str, str] = {}
        self.manual: set[str] = set()

    def upsert(self, path: str, body: dict[str, Any], at: float) -> None:
        entry = self.by_id.get(body["id"])
        if entry is None:
            self.add(path, body, at)
            self.by_id[body["id"]] = self.entries[path][-1]
        else:
            entry.obj.clear()
            entry.obj.update(body)

    def feed(self, record: EventRecord | TxnRecord, at: float) -> None:
        if isinstance(record, TxnRecord):
            self.upsert(PATH, json.loads(record.json), at)
            if record.payout:
                self.payout_of[record.id] = record.payout
        elif record.object_type == "payout":
            payout = json.loads(record.object_json)
            self.upsert("/v1/payouts", payout, at)
            if payout.get("automatic") is False:
                self.manual.add(payout["id"])

    def _match(self, entry: Entry, params: dict[str, Any]) -> bool:
        created = params.get("created") or {}
        at = entry.obj["created"]
        payout = params.get("payout")
        return (super()._match(entry, params) and ("lte" not in created or at <= created["lte"])
                and ("lt" not in created or at < created["lt"])
                and (payout is None or self.payout_of.get(entry.obj["id"]) == payout))

    def get_json(self, path: str, params: dict[str, Any], account: str | None = None,
                 endpoint: str | None = None) -> dict[str, Any]:
        if params.get("payout") in self.manual:  # "For automatic Stripe payouts only"
            raise StripeApiError(path, 400, "req_sim", Outcome.DEAD_LETTER, "manual payout")
        return super().get_json(path, params, account, endpoint)


def _latest_status(pub: FakePublisher) -> dict[str, str]:
    """What the streams keep per transaction: `available` once any copy says so (the order guard's rank)."""
    out: dict[str, str] = {}
    for topic, _k, value in pub.records:
        if topic.endswith("stripe.balance_transactions"):
            rec = CODEC.decode(value, "paysync.StripeBalanceTransaction")
            if out.get(rec["id"]) != "available":
                out[rec["id"]] = rec["status"]
    return out


def test_every_transaction_ends_with_the_simulators_final_status() -> None:
    # ~540 transactions, 12 payouts: ~90 transactions taken by manual ones, ~450 by automatic ones
    params = ScenarioParams(seed=21, events=2000, connected_accounts=0, manual_payout_rate=0.3, payout_interval=600,
                            start_time=1_800_000_000)
    scenario = Scenario(params)
    api, pub, cursors = SimStripe(), FakePublisher(), FakeCursors()
    poller = BalanceTransactionsPoller(api, pub, cursors, horizon=HorizonConfig(  # type: ignore[arg-type]
        horizon_s=600, deep_every_s=300, initial_lookback_s=3600))
    now = float(params.start_time)
    next_poll = now + 60
    for record in scenario.records():
        now = max(now, float(record.created if isinstance(record, TxnRecord) else record.created))
        while now >= next_poll:
            api.now = next_poll
            poller.poll_once(now=next_poll)
            next_poll += 60
        api.now = now
        api.feed(record, now)
    for _ in range(3 * 24 * 60):  # three more days: every watch window comes due
        api.now = next_poll
        poller.poll_once(now=next_poll)
        next_poll += 60
    final = {e.obj["id"]: e.obj["status"] for e in api.entries[PATH]}
    unnamed = {e.obj["id"] for e in api.entries[PATH] if e.obj["id"] not in api.payout_of}
    assert len(api.manual) >= 2 and len(unnamed) >= 50, "manual payouts whose transactions no `?payout=` names"
    assert len(api.payout_of) >= 100, "and automatic payouts listing their members"
    assert _latest_status(pub) == final
    assert set(final.values()) == {"available"}
