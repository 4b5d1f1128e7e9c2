"""The pollers of the platform and of every connected account the `AccountDirectory` knows, rebuilt each
round: an account connected during a run gets its pollers at the next round, one that left loses them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from producers.pollers.accounts import AccountDirectory

log = logging.getLogger(__name__)
PollerFactory = Callable[[str | None, AccountDirectory], list[Any]]


class PollerFleet:
    """`current()`: the pollers to run this round (created once per account, kept while it is connected)."""

    def __init__(self, directory: AccountDirectory, factory: PollerFactory,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory, self.factory, self.clock = directory, factory, clock
        self._by_account: dict[str | None, list[Any]] = {None: factory(None, directory)}

    def current(self) -> list[Any]:
        """Refresh the directory (errors logged: the known accounts go on), then every account's pollers."""
        try:
            self.directory.refresh(self.clock())
        except Exception:  # noqa: BLE001 - a failed account listing must not stop polling the known accounts
            log.exception("listing connected accounts failed")
        wanted = [None, *self.directory.accounts()]
        for account in wanted:
            if account not in self._by_account:
                log.info("polling a new connected account", extra={"account": account})
                self._by_account[account] = self.factory(account, self.directory)
        for account in [a for a in self._by_account if a not in wanted]:
            del self._by_account[account]
        return [p for account in wanted for p in self._by_account[account]]
