"""Late list visibility (issue 15) applies to range lists, never to `GET /v1/balance_transactions?payout=`: Stripe's
Payout object, `reconciliation_status`: "If `completed`, you can use the Balance Transactions API to list all
balance transactions that are paid out in this payout" (docs "Payout reconciliation")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulators.stripe_simulator import SimulatorHandle, start_simulator

LATE_S = 10 * 86400.0  # every entry created in this run stays out of the range lists for the whole test


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    h = start_simulator(seed=3, start_time=int(time.time()) - 3600, delay_scale=0.001, payout_interval=600)
    try:
        h.configure(visibility_max_delay_s=LATE_S)
        h.generate(events=800)
        yield h
    finally:
        h.stop()


def _list(h: SimulatorHandle, account: str, **params: Any) -> list[dict[str, Any]]:
    """Every listed balance transaction (paged with `starting_after`)."""
    headers = {"Authorization": f"Bearer {h.api_key}", **({"Stripe-Account": account} if account else {})}
    listed: list[dict[str, Any]] = []
    while True:
        after = {"starting_after": listed[-1]["id"]} if listed else {}
        body = httpx.get(f"{h.base_url}/v1/balance_transactions", params={"limit": 100, **params, **after},
                         headers=headers, timeout=30).json()
        listed += body["data"]
        if not body["has_more"]:
            return listed


def test_a_reconciled_payouts_list_is_complete_while_range_lists_are_late(sim: SimulatorHandle) -> None:
    truth = sim.truth()
    reconciled = [line for line in truth if line["kind"] == "payout" and line["automatic"]
                  and line["reconciliation_status"] == "completed"]
    assert len(reconciled) >= 3
    txns = [line for line in truth if line["kind"] == "object" and line["type"] == "balance_transaction"]
    accounts = {line["account"] for line in txns}
    range_listed = sum(len(_list(sim, account)) for account in accounts)
    assert range_listed < len(txns) // 10, "the knob is not on: range lists should hide nearly every entry"
    for payout in reconciled:
        listed = _list(sim, payout["account"], payout=payout["id"])
        members = {t["id"] for t in listed if t["type"] != "payout"}
        assert members == {m["id"] for m in payout["members"]}, payout["id"]
        assert [t["id"] for t in listed if t["type"] == "payout"] == [payout["balance_transaction"]]
