"""A failed automatic payout's members (issue 15, with late lists): listed as soon as it fails, and once more a
visibility horizon later, because Stripe documents the `?payout=` list as complete only once `reconciliation_status`
is `completed` and its list entries can become visible late; a failed payout already `completed` is listed once."""

from __future__ import annotations

from typing import Any

from fake_stripe import FakeCursors, FakePublisher, FakeStripe, balance_txn

from paysync.codec import AvroCodec
from producers.pollers.balance_poller import BalanceTransactionsPoller
from producers.pollers.listing import HorizonConfig

T = 1_800_000_000
HORIZON = HorizonConfig(horizon_s=600, deep_every_s=300)
TOPIC = "stripe.balance_transactions"


class PayoutFakeStripe(FakeStripe):
    """`FakeStripe` answering `?payout=` with the members of `members[payout]` visible by then."""

    members: dict[str, set[str]]
    payout_lists: list[str]

    def _match(self, entry: Any, params: dict[str, Any]) -> bool:
        payout = params.get("payout")
        if payout is not None and entry.obj["id"] not in self.members.get(payout, set()):
            return False
        return super()._match(entry, params)

    def get_json(self, path: str, params: dict[str, Any], account: str | None = None,
                 endpoint: str | None = None) -> dict[str, Any]:
        if "payout" in params:
            self.payout_lists.append(str(params["payout"]))
        return super().get_json(path, params, account, endpoint)

    def member_calls(self) -> int:
        return len(self.payout_lists)


def _failed_payout(pid: str, reconciliation: str | None) -> dict[str, Any]:
    return {"id": pid, "object": "payout", "amount": 291, "currency": "usd", "status": "failed", "automatic": True,
            "reconciliation_status": reconciliation, "created": T - 3600, "arrival_date": T, "livemode": False,
            "method": "standard"}


def _setup(reconciliation: str | None) -> tuple[PayoutFakeStripe, FakeCursors, FakePublisher]:
    api = PayoutFakeStripe(now=T)
    api.payout_lists = []
    api.members = {"po_1": {"txn_00000001", "txn_00000002", "txn_00000003"}}
    api.add("/v1/payouts", _failed_payout("po_1", reconciliation), visible_at=0)
    for n in (1, 2):
        api.add("/v1/balance_transactions", balance_txn(n, T - 7200), visible_at=0)
    late = balance_txn(3, T - 7200)
    api.add("/v1/balance_transactions", late, visible_at=T + 100)  # its membership shows up 100 s after the failure
    for txn in api.entries["/v1/balance_transactions"]:
        txn.obj["status"] = "available"
    return api, FakeCursors(), FakePublisher()


def _poll(api: PayoutFakeStripe, cursors: FakeCursors, publisher: FakePublisher, now: float) -> None:
    api.now = now
    poller = BalanceTransactionsPoller(api, publisher, cursors, horizon=HORIZON)  # type: ignore[arg-type]
    poller.poll_once(now)


def _members(publisher: FakePublisher) -> set[tuple[str, str, int]]:
    codec = AvroCodec()
    records = [codec.decode(value) for topic, _, value in publisher.records if topic == TOPIC]
    return {(r["id"], r["payout_id"], r["payout_transaction_count"]) for r in records if r["payout_id"]}


def test_a_failed_payout_is_listed_again_a_horizon_after_it_failed() -> None:
    api, cursors, publisher = _setup(reconciliation="in_progress")
    _poll(api, cursors, publisher, T)
    assert _members(publisher) == {("txn_00000001", "po_1", 2), ("txn_00000002", "po_1", 2)}  # short: one is late
    _poll(api, cursors, publisher, T + 300)  # inside the horizon: not listed again yet
    assert api.member_calls() == 1
    _poll(api, cursors, publisher, T + HORIZON.horizon_s)
    assert api.member_calls() == 2
    assert {m for m in _members(publisher) if m[2] == 3} == {
        ("txn_00000001", "po_1", 3), ("txn_00000002", "po_1", 3), ("txn_00000003", "po_1", 3)}
    _poll(api, cursors, publisher, T + 5 * HORIZON.horizon_s)  # done for good
    assert api.member_calls() == 2
    assert "po_1" in cursors.load_state("balance_transactions")["payouts_final"]


def test_a_failed_payout_whose_reconciliation_completed_is_listed_once() -> None:
    api, cursors, publisher = _setup(reconciliation="completed")
    for now in (T, T + 300, T + HORIZON.horizon_s, T + 5 * HORIZON.horizon_s):
        _poll(api, cursors, publisher, now)
    assert api.member_calls() == 1
