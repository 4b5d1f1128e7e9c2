"""`paysync backfill`'s run: the types it lists (the registry's), their windows, records and resumable cursors."""

from __future__ import annotations

import argparse
import json
from typing import Any

from paysync.codec import AvroCodec
from producers.backfill import ALL_TYPES, EVENTS_WINDOW_S, OBJECT_TYPES, _backfill_kind, _Run, _window
from paysync.outcomes import Outcome
from producers.pollers.balance_poller import BalanceTransactionsPoller
from producers.stripe_api import Page, StripeApiError

NOW = 1_800_000_000
SINCE = NOW - 90 * 86400


class FakeApi:
    """`StripeApi.list_all` over fixed pages, recording what was asked."""

    api_version = "2025-03-31.basil"

    def __init__(self, pages: list[Page]) -> None:
        self.pages = pages
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []

    def list_all(self, path: str, params: dict[str, Any], account: str | None = None,
                 starting_after: str | None = None) -> Any:
        self.calls.append((path, params, starting_after))
        for page in self.pages:
            yield page, page.objects[-1]["id"] if page.objects else starting_after


class FakeCursors:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def load_state(self, name: str) -> dict[str, Any]:
        return dict(self.saved.get(name, {}))

    def save(self, name: str, state: dict[str, Any], created: int | None) -> None:
        self.saved[name] = dict(state)


class FakePublisher:
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, bytes]]] = []

    def publish_many_sync(self, batch: list[tuple[str, str, bytes]], timeout: float) -> None:
        self.batches.append(batch)


class NoMembers:
    def payout_members(self, payout_id: str) -> list[tuple[str, str, bytes]]:
        return [("bts", payout_id, b"member")]


def _run(api: FakeApi, cursors: FakeCursors, publisher: FakePublisher, restart: bool = False) -> _Run:
    args = argparse.Namespace(restart=restart, until=str(NOW), no_progress=True)
    return _Run(args, SINCE, "acct_1", api, publisher, cursors, AvroCodec(), NoMembers(), "events", "bts", 1.0)


def _refund(i: int) -> dict[str, Any]:
    return {"id": f"re_{i}", "object": "refund", "charge": "ch_9", "amount": 100, "currency": "usd",
            "status": "succeeded", "created": SINCE + i}


def test_the_types_are_the_registrys_backfill_types_in_order() -> None:
    assert ALL_TYPES == ("events", "customers", "payment_intents", "charges", "refunds", "disputes", "invoices",
                         "payouts", "invoice_payments", "balance_transactions")
    assert OBJECT_TYPES["customers"] == "customer" and OBJECT_TYPES["payment_intents"] == "payment_intent"
    assert OBJECT_TYPES["refunds"] == "refund"


def test_windows_split_history_between_the_events_api_and_the_object_lists() -> None:
    assert _window("events", SINCE, NOW) == (NOW - EVENTS_WINDOW_S + 60, NOW)
    assert _window("charges", SINCE, NOW) == (SINCE, NOW - EVENTS_WINDOW_S + 60)
    assert _window("charges", NOW - 86400, NOW) is None
    assert _window("balance_transactions", SINCE, NOW) == (SINCE, NOW)


def test_listed_objects_become_snapshot_events_keyed_by_their_charge_and_the_run_resumes() -> None:
    objects = [_refund(1), _refund(2)]
    api = FakeApi([Page(objects, [json.dumps(o) for o in objects], has_more=False)])
    cursors, publisher = FakeCursors(), FakePublisher()
    assert _backfill_kind(_run(api, cursors, publisher), "refunds") == 2
    [(path, params, after)] = api.calls
    assert (path, after) == ("/v1/refunds", None)
    assert params["created"] == {"gte": SINCE, "lte": NOW - EVENTS_WINDOW_S + 60}
    [batch] = publisher.batches
    assert [(topic, key) for topic, key, _ in batch] == [("events", "ch_9"), ("events", "ch_9")]
    state = cursors.saved[f"backfill:refunds:acct_1:{SINCE}"]
    assert state == {"until": NOW, "after": "re_2", "done": True}
    assert _backfill_kind(_run(api, cursors, publisher), "refunds") == 0  # complete: not listed again
    assert len(api.calls) == 1
    assert _backfill_kind(_run(api, cursors, publisher, restart=True), "refunds") == 2


class PayoutApi(FakeApi):
    """Payouts on one page; `?payout=` answers members, or Stripe's 400 for the ids in `refused`."""

    def __init__(self, payouts: list[dict[str, Any]], refused: set[str]) -> None:
        super().__init__([Page(payouts, [json.dumps(p) for p in payouts], has_more=False)])
        self.refused = refused

    def list_all(self, path: str, params: dict[str, Any], account: str | None = None,
                 starting_after: str | None = None) -> Any:
        if "payout" not in params:
            yield from super().list_all(path, params, account, starting_after)
            return
        self.calls.append((path, params, starting_after))
        if params["payout"] in self.refused:
            raise StripeApiError(path, 400, "req_1", Outcome.DEAD_LETTER, "cannot list a manual payout")
        txn = {"id": f"txn_{params['payout']}", "object": "balance_transaction", "type": "charge", "amount": 900,
               "fee": 0, "net": 900, "currency": "usd", "created": SINCE, "available_on": SINCE, "source": "ch_1"}
        yield Page([txn], [json.dumps(txn)], has_more=False), None


def _payout(pid: str, automatic: bool, status: str, reconciliation: str | None) -> dict[str, Any]:
    return {"id": pid, "object": "payout", "amount": 900, "currency": "usd", "status": status,
            "automatic": automatic, "reconciliation_status": reconciliation, "created": SINCE + 5}


def test_payouts_list_members_only_when_stripe_can_and_a_refusal_is_dead_lettered_not_fatal() -> None:
    listed = [_payout("po_manual", False, "paid", "not_applicable"), _payout("po_open", True, "paid", "in_progress"),
              _payout("po_done", True, "paid", "completed"), _payout("po_failed", True, "failed", "not_applicable"),
              _payout("po_refused", True, "paid", "completed")]
    api, cursors, publisher = PayoutApi(listed, {"po_refused", "po_manual"}), FakeCursors(), FakePublisher()
    members = BalanceTransactionsPoller(api, publisher, cursors, topic_prefix="t.", account="acct_1",  # type: ignore[arg-type]
                                        source="backfill")
    run = _Run(argparse.Namespace(restart=False, until=str(NOW), no_progress=True), SINCE, "acct_1", api, publisher,
               cursors, AvroCodec(), members, "t.stripe.events", "t.stripe.balance_transactions", 1.0)
    _backfill_kind(run, "payouts")
    assert [params["payout"] for _, params, _ in api.calls if "payout" in params] == [
        "po_done", "po_failed", "po_refused"]
    codec = AvroCodec()
    [batch] = publisher.batches
    members_out = [codec.decode(v) for t, _, v in batch if t == "t.stripe.balance_transactions"]
    assert {(m["payout_id"], m["payout_transaction_count"], m["source"]) for m in members_out} == {
        ("po_done", 1, "backfill"), ("po_failed", 1, "backfill")}
    [letter] = [codec.decode(v) for t, _, v in batch if t == "t.paysync.dlq"]
    assert (letter["object_id"], letter["error_code"]) == ("po_refused", "PAYOUT_MEMBERS_REFUSED")
    assert cursors.saved[f"backfill:payouts:acct_1:{SINCE}"]["done"] is True
    assert len([t for t, _, _ in batch if t == "t.stripe.events"]) == 5  # every payout's snapshot
