"""Connect accounts joining and leaving the platform during a run (issue 15 point 3).

As Stripe documents it:
- "Connect webhooks" (docs.stripe.com/connect/webhooks): a platform has account webhooks ("activity on your own
  account") and Connect webhooks ("activity on any connected account"); a connected account's event carries
  the top-level `account` (stripe-python 16.1 `Event.account`: "The connected account that originates the event").
- `account.application.authorized`: "Occurs whenever a user authorizes an application. Sent to the related
  application only." (stripe-ruby `V1AccountApplicationAuthorizedEventNotification`); its `data.object` is the
  platform's `application` (`{"id": "ca_…", "object": "application", "name": …}`).
- After `account.application.deauthorized` the platform has lost access: "the tokens have already been
  decommissioned, so the event_retriever is pretty much guaranteed to throw" (integrallis/stripe_event#32,
  and #15: "The event retriever no longer has access to verify the event since access was revoked"); the
  simulator answers 403 to any request made as that account (`api.py`) and stops listing it.
- `GET /v1/accounts` ("List all connected accounts": "Returns a list of accounts connected to your platform via
  Connect") lists them newest first, from the moment they connect.
Stricter where in doubt: the authorization event is the connected account's own (listed by `GET /v1/events`
with `Stripe-Account`, sent to the Connect endpoint), never in the platform's own event list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .ledger import Account
from .records import dumps

if TYPE_CHECKING:
    from .engine import Engine

SETTLEMENT_CURRENCIES = ("usd", "eur", "usd", "gbp")
_COUNTRY = {"usd": "US", "eur": "DE", "gbp": "GB"}
APPLICATION = {"id": "ca_SimulatorPlatform0000000000", "object": "application", "name": "paysync simulator platform"}
AUTHORIZED, DEAUTHORIZED = "account.application.authorized", "account.application.deauthorized"


def account_object(account_id: str, currency: str, created: int) -> dict[str, Any]:
    """A Standard connected account as `GET /v1/accounts` shows it (the fields the Account object documents that
    the simulator has a value for)."""
    return {
        "id": account_id, "object": "account",
        "business_profile": {"mcc": None, "name": f"Merchant {account_id[-6:]}", "support_email": None, "url": None},
        "business_type": "company", "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True, "country": _COUNTRY.get(currency, "US"), "created": created,
        "default_currency": currency, "details_submitted": True, "email": None, "metadata": {},
        "payouts_enabled": True, "type": "standard",
    }


def new_account(sim: Engine) -> Account:
    """A connected account in the next settlement currency (its ids from the scenario's id factory)."""
    currency = SETTLEMENT_CURRENCIES[len(sim.accounts) % len(SETTLEMENT_CURRENCIES)]
    return Account(sim.ids.new("acct"), currency, sim.ids.new("ba"))


def initial_accounts(sim: Engine) -> list[tuple[str, int, str]]:
    """(id, created, account JSON) of the accounts connected before the run (created a day apart before it)."""
    out = []
    for i, account in enumerate(sim.accounts[1:], 1):
        assert account.id is not None
        created = sim.p.start_time - 86400 * (len(sim.accounts) - i)
        out.append((account.id, created, dumps(account_object(account.id, account.currency, created))))
    return out


def connect(sim: Engine) -> Account:
    """A new account authorizes the platform now: listed from now on, announced, given traffic of its own."""
    account = new_account(sim)
    assert account.id is not None
    sim.accounts.append(account)
    sim.emit(AUTHORIZED, dict(APPLICATION), account, request=False)
    sim.last_record_account(dumps(account_object(account.id, account.currency, sim.now)))
    return account


def deauthorize(sim: Engine, account: Account) -> None:
    """`account` revokes the platform's access now: announced, no longer listed, no longer readable."""
    assert account.id is not None
    if account in sim.accounts:
        sim.accounts.remove(account)
    sim.emit(DEAUTHORIZED, dict(APPLICATION), account, request=False)
    sim.last_record_account(dumps(account_object(account.id, account.currency, sim.now)))
