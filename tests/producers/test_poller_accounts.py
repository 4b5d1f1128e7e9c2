"""Issue 15 point 3: a connected account is picked up without a restart (listed by `GET /v1/accounts` or
announced by `account.application.authorized`), and one that left is no longer polled. Fails on the old
code (8fd7a4f: only the fixed `PAYSYNC_STRIPE_ACCOUNTS`, no `producers.pollers.accounts`)."""

from __future__ import annotations

from typing import Any

from fake_stripe import FakeStripe

from producers.pollers.accounts import AccountDirectory
from producers.pollers.fleet import PollerFleet


def _fleet(api: FakeStripe, clock: list[float]) -> tuple[AccountDirectory, PollerFleet]:
    directory = AccountDirectory(api, fixed=["acct_fixed"], relist_every_s=600)

    def factory(account: str | None, _d: AccountDirectory) -> list[Any]:
        return [f"events:{account}"]

    return directory, PollerFleet(directory, factory, clock=lambda: clock[0])


def test_an_account_listed_later_is_polled_without_a_restart() -> None:
    api, clock = FakeStripe(now=0), [1000.0]
    api.add("/v1/accounts", {"id": "acct_a", "created": 1}, 0)
    directory, fleet = _fleet(api, clock)
    assert fleet.current() == ["events:None", "events:acct_a", "events:acct_fixed"]
    api.add("/v1/accounts", {"id": "acct_b", "created": 2}, 0)
    clock[0] += 601  # the next listing of /v1/accounts is due
    assert "events:acct_b" in fleet.current()


def test_authorized_and_deauthorized_events_add_and_remove_an_account() -> None:
    api, clock = FakeStripe(now=0), [1000.0]
    directory, fleet = _fleet(api, clock)
    fleet.current()
    directory.observe({"type": "account.application.authorized", "account": "acct_new"})
    assert "events:acct_new" in fleet.current()  # the same process, the next round
    directory.observe({"type": "account.application.deauthorized", "account": "acct_new"})
    directory.observe({"type": "account.application.deauthorized", "account": "acct_fixed"})
    assert fleet.current() == ["events:None", "events:acct_fixed"]  # a fixed account stays
