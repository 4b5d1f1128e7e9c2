"""The balance poller's payout side (issue 19, point 4): manual payouts never listed with `?payout=`,
members listed once `reconciliation_status` is `completed`, and one failing payout never stops the
cursor or the other payouts (retried with backoff, then dead-lettered)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from paysync.codec import AvroCodec
from paysync.outcomes import Outcome
from producers.pollers import payouts
from producers.pollers.balance_poller import BalanceTransactionsPoller
from producers.stripe_api import Page, StripeApiError

NOW = 1_800_000_000
PREFIX = "t."


def _payout(pid: str, *, automatic: bool = True, status: str = "paid", reconciliation: str | None = "completed",
            amount: int = 900) -> dict[str, Any]:
    return {"id": pid, "object": "payout", "amount": amount, "currency": "usd", "status": status,
            "automatic": automatic, "reconciliation_status": reconciliation, "created": NOW - 3600,
            "arrival_date": NOW, "livemode": False, "method": "standard" if automatic else "instant"}


def _txn(tid: str, payout_id: str, net: int, txn_type: str = "charge", created: int = NOW - 7200) -> dict[str, Any]:
    return {"id": tid, "object": "balance_transaction", "type": txn_type, "amount": net, "fee": 0, "net": net,
            "currency": "usd", "created": created, "available_on": NOW - 3600, "status": "available",
            "source": f"ch_{tid}" if txn_type == "charge" else payout_id, "reporting_category": txn_type}


class FakeApi:
    """`list_all` answering the range listing, `/v1/payouts` and `?payout=` from dicts; failures on demand."""

    api_version = "2026-10-28.endive"

    def __init__(self) -> None:
        self.range: list[dict[str, Any]] = []
        self.payouts: list[dict[str, Any]] = []
        self.members: dict[str, list[dict[str, Any]]] = {}
        self.failing: dict[str, int] = {}  # payout id (or "/v1/payouts") -> HTTP status it answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_all(self, path: str, params: dict[str, Any], account: str | None = None,
                 starting_after: str | None = None) -> Iterator[tuple[Page, str | None]]:
        self.calls.append((path, params))
        target = params.get("payout") or path
        if target in self.failing:
            status = self.failing[target]
            outcome = Outcome.RETRY if status >= 500 else Outcome.DEAD_LETTER
            raise StripeApiError(path, status, "req_1", outcome, "boom")
        if path == "/v1/payouts":
            objects = self.payouts
        elif "payout" in params:
            objects = self.members[params["payout"]]
        else:
            objects = self.range
        yield Page(objects, [json.dumps(o) for o in objects], has_more=False), None

    def list_newer(self, path: str, params: dict[str, Any], ending_before: str,
                   account: str | None = None) -> Iterator[Page]:
        return iter(())  # the range listing's tail: nothing newer

    def member_calls(self) -> list[str]:
        return [p["payout"] for path, p in self.calls if "payout" in p]


class FakeCursors:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def load_state(self, name: str) -> dict[str, Any] | None:
        return json.loads(json.dumps(self.saved[name])) if name in self.saved else None

    def save(self, name: str, state: dict[str, Any], created: int | None) -> None:
        self.saved[name] = json.loads(json.dumps(state))


class FakePublisher:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, bytes]] = []

    def publish_many_sync(self, batch: list[tuple[str, str, bytes]], timeout: float) -> int:
        self.records.extend(batch)
        return len(batch)

    def on(self, topic: str) -> list[dict[str, Any]]:
        codec = AvroCodec()
        return [codec.decode(value) for t, _, value in self.records if t == f"{PREFIX}{topic}"]


def _poller(api: FakeApi, cursors: FakeCursors, publisher: FakePublisher) -> BalanceTransactionsPoller:
    return BalanceTransactionsPoller(api, publisher, cursors, topic_prefix=PREFIX)  # type: ignore[arg-type]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.range = [_txn("txn_r", "", 50, created=NOW - 60)]
    return fake


def test_a_manual_payout_is_never_listed_and_its_header_is_published(api: FakeApi) -> None:
    api.payouts = [_payout("po_manual", automatic=False, reconciliation="not_applicable"), _payout("po_auto")]
    api.members = {"po_auto": [_txn("txn_a1", "po_auto", 400), _txn("txn_a2", "po_auto", 500),
                               _txn("txn_po", "po_auto", -900, "payout")]}
    api.failing = {"po_manual": 400}  # what Stripe answers for a manual payout
    cursors, publisher = FakeCursors(), FakePublisher()
    before = _metric("paysync_payout_headers_total", reason="manual")
    _poller(api, cursors, publisher).poll_once(NOW)
    assert api.member_calls() == ["po_auto"]
    [header] = publisher.on("stripe.events")
    assert (header["event_type"], header["object_id"], header["object_type"]) == ("payout.poll", "po_manual", "payout")
    assert header["event_id"] == f"poll:po_manual:{NOW}" and header["created"] == NOW
    assert json.loads(header["raw_event"])["data"]["object"]["automatic"] is False
    members = [r for r in publisher.on("stripe.balance_transactions") if r["payout_id"]]
    assert {(r["id"], r["payout_id"], r["payout_transaction_count"]) for r in members} == {
        ("txn_a1", "po_auto", 2), ("txn_a2", "po_auto", 2), ("txn_po", "po_auto", 2)}
    assert _metric("paysync_payout_headers_total", reason="manual") == before + 1
    _poller(api, cursors, publisher).poll_once(NOW + 60)  # restarted: both are done
    assert api.member_calls() == ["po_auto"] and len(publisher.on("stripe.events")) == 1


def test_members_are_listed_when_reconciliation_completes_not_at_paid(api: FakeApi) -> None:
    api.payouts = [_payout("po_1", reconciliation="in_progress")]
    api.members = {"po_1": [_txn("txn_1", "po_1", 900)]}
    cursors, publisher = FakeCursors(), FakePublisher()
    _poller(api, cursors, publisher).poll_once(NOW)
    assert api.member_calls() == []  # paid, reconciliation in progress: the list may be incomplete
    api.payouts = [_payout("po_1", reconciliation="completed")]
    _poller(api, cursors, publisher).poll_once(NOW + 60)
    assert api.member_calls() == ["po_1"]
    [member] = [r for r in publisher.on("stripe.balance_transactions") if r["payout_id"]]
    assert (member["id"], member["payout_transaction_count"]) == ("txn_1", 1)


def test_a_payout_listed_at_paid_by_the_old_poller_is_listed_again_once_completed(api: FakeApi) -> None:
    api.payouts = [_payout("po_1")]
    api.members = {"po_1": [_txn("txn_1", "po_1", 900)]}
    cursors, publisher = FakeCursors(), FakePublisher()
    name = "balance_transactions"
    cursors.saved[name] = {"seen": {}, "payouts_done": {"po_1": NOW - 3600}, "created": None}
    _poller(api, cursors, publisher).poll_once(NOW)
    _poller(api, cursors, publisher).poll_once(NOW + 60)
    assert api.member_calls() == ["po_1"]


def test_one_failing_payout_never_stops_the_cursor_or_the_other_payouts(api: FakeApi) -> None:
    api.payouts = [_payout("po_bad"), _payout("po_good")]
    api.members = {"po_bad": [_txn("txn_b", "po_bad", 900)], "po_good": [_txn("txn_g", "po_good", 900)]}
    api.failing = {"po_bad": 503}  # a 5xx after the client's own retries
    cursors, publisher = FakeCursors(), FakePublisher()
    before = _metric("paysync_payout_listing_failures_total", stage="members", status="503")
    dead_before = _metric("paysync_payout_dead_letters_total", code="PAYOUT_MEMBERS_RETRIES_EXHAUSTED")
    _poller(api, cursors, publisher).poll_once(NOW)
    state = cursors.saved["balance_transactions"]
    assert _metric("paysync_payouts_awaiting_retry", poller="balance_transactions") == 1
    control_cursors, control_publisher = _control_run(api)
    assert _range_part(state) == _range_part(control_cursors.saved["balance_transactions"])  # cursor moved on
    ids = [r["id"] for r in publisher.on("stripe.balance_transactions")]
    assert ids == [r["id"] for r in control_publisher.on("stripe.balance_transactions") if r["id"] != "txn_b"]
    assert "txn_r" in ids and "txn_g" in ids
    assert state["payout_retries"]["po_bad"]["tries"] == 1
    assert _metric("paysync_payout_listing_failures_total", stage="members", status="503") == before + 1

    now = NOW
    _poller(api, cursors, publisher).poll_once(now + 1)  # inside the backoff: not asked again
    assert api.member_calls().count("po_bad") == 1
    for tries in range(2, payouts.MAX_TRIES + 1):
        now = int(cursors.saved["balance_transactions"]["payout_retries"]["po_bad"]["next_at"])
        _poller(api, cursors, publisher).poll_once(now)
        assert api.member_calls().count("po_bad") == tries
    [letter] = publisher.on("paysync.dlq")
    assert (letter["object_id"], letter["original_key"], letter["stage"]) == ("po_bad", b"po_bad", "producers")
    assert (letter["error_code"], letter["attempts"]) == ("PAYOUT_MEMBERS_RETRIES_EXHAUSTED", payouts.MAX_TRIES)
    assert "503" in letter["message"] and letter["original_value"] is None
    assert _metric("paysync_payout_dead_letters_total", code="PAYOUT_MEMBERS_RETRIES_EXHAUSTED") == dead_before + 1
    _poller(api, cursors, publisher).poll_once(now + 10 * 86400)  # dead-lettered: never listed again
    assert api.member_calls().count("po_bad") == payouts.MAX_TRIES
    assert cursors.saved["balance_transactions"]["payout_retries"] == {}


def _range_part(state: dict[str, Any]) -> dict[str, Any]:
    """The cursor state without the payout side's keys (the range listing's own cursor)."""
    return {k: v for k, v in state.items() if k not in ("payouts_final", "payout_retries", "payouts_done")}


def _control_run(api: FakeApi) -> tuple[FakeCursors, FakePublisher]:
    """The same poll with no failing payout, for comparison."""
    control = FakeApi()
    control.range, control.payouts, control.members = api.range, api.payouts, api.members
    cursors, publisher = FakeCursors(), FakePublisher()
    _poller(control, cursors, publisher).poll_once(NOW)
    return cursors, publisher


def test_a_400_is_dead_lettered_at_once_and_never_retried(api: FakeApi) -> None:
    api.payouts = [_payout("po_refused")]
    api.failing = {"po_refused": 400}
    cursors, publisher = FakeCursors(), FakePublisher()
    for minute in range(5):
        _poller(api, cursors, publisher).poll_once(NOW + minute * 86400)
    assert api.member_calls() == ["po_refused"]
    [letter] = publisher.on("paysync.dlq")
    assert (letter["error_code"], letter["object_id"], letter["attempts"]) == ("PAYOUT_MEMBERS_REFUSED", "po_refused", 1)


def test_a_failing_payouts_listing_still_saves_the_range_cursor(api: FakeApi) -> None:
    api.failing = {"/v1/payouts": 500}
    cursors, publisher = FakeCursors(), FakePublisher()
    published = _poller(api, cursors, publisher).poll_once(NOW)
    control_cursors, control_publisher = _control_run(api)
    assert published == len(control_publisher.records) and "txn_r" in str(publisher.on("stripe.balance_transactions"))
    assert _range_part(cursors.saved["balance_transactions"]) == _range_part(control_cursors.saved["balance_transactions"])


@pytest.mark.parametrize(("payout", "expected"), [
    (_payout("p", automatic=False, status="in_transit", reconciliation="not_applicable"), "wait"),
    (_payout("p", automatic=False, status="paid", reconciliation="not_applicable"), "header"),
    (_payout("p", automatic=False, status="failed", reconciliation="not_applicable"), "header"),
    (_payout("p", status="in_transit", reconciliation="in_progress"), "wait"),
    (_payout("p", status="paid", reconciliation="in_progress"), "wait"),
    (_payout("p", status="paid", reconciliation="completed"), "members"),
    (_payout("p", status="paid", reconciliation=None), "members"),
    (_payout("p", status="failed", reconciliation="not_applicable"), "members"),
    (_payout("p", status="canceled", reconciliation="not_applicable"), "nothing"),
])
def test_plan(payout: dict[str, Any], expected: str) -> None:
    assert payouts.plan(payout) == expected
