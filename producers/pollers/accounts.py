"""The connected accounts the pollers serve (issue 15 point 3): the fixed `PAYSYNC_STRIPE_ACCOUNTS`, plus those
listed by `GET /v1/accounts` (re-listed every `relist_every_s`), plus `account.application.authorized` /
`.deauthorized` events seen by the platform's events poller (an event's `account` names the connected
account), so an account connected during a run is polled without a restart.

'Rate limits': "The basic rate limiter restricts the number of API requests per second" (100 live, 25 in a
sandbox) for the whole platform, so every account shares one client (`StripeApi`), and the poll loop
(`producers.pollers.cli.run`) gives each account one turn of at most `max_pages_per_poll` pages in order.
"""

from __future__ import annotations

import logging
from typing import Any

from producers.stripe_api import StripeApi

log = logging.getLogger(__name__)
AUTHORIZED, DEAUTHORIZED = "account.application.authorized", "account.application.deauthorized"


class AccountDirectory:
    """`accounts()`: the connected accounts to poll now (sorted); `observe(event)` takes Connect events."""

    def __init__(self, api: StripeApi, fixed: list[str], discover: bool = True, relist_every_s: float = 600.0) -> None:
        self.api, self.fixed, self.discover, self.relist_every_s = api, list(fixed), discover, relist_every_s
        self._listed: set[str] = set()
        self._left: set[str] = set()
        self._last_listed: float | None = None

    def refresh(self, now: float) -> None:
        """List `/v1/accounts` when it is due (every `relist_every_s`)."""
        if not self.discover or (self._last_listed is not None and now - self._last_listed < self.relist_every_s):
            return
        self._last_listed = now  # a failed listing is tried again after the same pause, not every round
        listed: set[str] = set()
        for page, _ in self.api.list_all("/v1/accounts", {}):
            listed.update(str(a["id"]) for a in page.objects if a.get("id"))
        self._listed = listed
        self._left -= listed

    def observe(self, event: dict[str, Any]) -> None:
        """An `account.application.*` event adds or removes its connected account."""
        account = event.get("account")
        if not isinstance(account, str) or not account:
            return
        if event.get("type") == AUTHORIZED:
            self._listed.add(account)
            self._left.discard(account)
            log.info("connected account authorized", extra={"account": account})
        elif event.get("type") == DEAUTHORIZED:
            self._listed.discard(account)
            self._left.add(account)
            log.info("connected account deauthorized", extra={"account": account})

    def accounts(self) -> list[str]:
        """Fixed accounts always; discovered ones unless they left."""
        return sorted(set(self.fixed) | (self._listed - self._left))
