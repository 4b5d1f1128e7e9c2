"""Lists balance transactions by `created` range, and the members of every payout that reached
`paid` or `failed` (`?payout=`), publishing them to `stripe.balance_transactions`.

Each transaction is published once from the range listing (`payout_id` null) and again from its
payout's listing with `payout_id` and `payout_transaction_count` (members excluding the payout's
own `type=payout` transaction). `expand[]=data.source` rides in the same list call, so refunds and
disputes are keyed by their charge at no extra cost. Payouts already listed are kept in the cursor.

The range listing is a `HorizonListing` (`producers.pollers.listing`): balance transactions have no second
source, so one that becomes visible late must still be listed (issue 15 point 1): its cursor never passes
the visibility horizon, and pages are published and checkpointed one at a time (point 2).

A transaction listed while `pending` is watched (`producers.pollers.pending_watch`, in the cursor state) and
listed again once its `available_on` has passed, so its `available` copy is published even when no automatic
payout lists it (a manual or instant payout, or none; issue 19 point 4).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from paysync.codec import AvroCodec
from paysync.topics import STRIPE_BALANCE_TRANSACTIONS
from producers.balance_records import Source, balance_record
from producers.cursors import CursorStore
from producers.publisher import KafkaPublisher
from producers.pollers import payouts
from producers.pollers.listing import HorizonConfig, HorizonListing, Listed
from producers.pollers.pending_watch import PendingWatch, watch
from producers.stripe_api import StripeApi

log = logging.getLogger(__name__)
FINAL_PAYOUT_STATUSES = frozenset({"paid", "failed"})
_EXPAND = {"expand": ["data.source"]}


class BalanceTransactionsPoller:
    """One account's balance transactions and payouts. `poll_once()` returns how many records it published."""

    def __init__(self, api: StripeApi, publisher: KafkaPublisher, cursors: CursorStore, *, topic_prefix: str = "",
                 account: str | None = None, horizon: HorizonConfig | None = None,
                 payout_lookback_days: int = 14, publish_timeout_s: float = 30.0,
                 codec: AvroCodec | None = None, source: Source = "poll") -> None:
        self.api, self.publisher, self.cursors = api, publisher, cursors
        self.topic = STRIPE_BALANCE_TRANSACTIONS.full_name(topic_prefix)
        self.account = account
        self.name = f"balance_transactions:{account}" if account else "balance_transactions"
        self.listing = HorizonListing(api, "/v1/balance_transactions", dict(_EXPAND), account,
                                      horizon or HorizonConfig())
        self.payout_lookback_s = payout_lookback_days * 86400
        self.publish_timeout_s = publish_timeout_s
        self.codec = codec or AvroCodec()
        self.source = source
        self.state: dict[str, Any] | None = None
        self.pending = PendingWatch(api, account, self.name, self._publish_listed, self._save)

    def _load(self) -> dict[str, Any]:
        if self.state is None:
            self.state = self.cursors.load_state(self.name) or {}
            self.state.setdefault("seen", {})
            self.state.setdefault("payouts_done", {})
        return self.state

    def _encode(self, txn: dict[str, Any], raw: str, payout_id: str | None = None,
                count: int | None = None) -> tuple[str, str, bytes]:
        key, record = balance_record(txn, raw, source=self.source, account=self.account,
                                     api_version=self.api.api_version, received_at_ms=int(time.time() * 1000),
                                     payout_id=payout_id, payout_transaction_count=count, exact=True)
        return self.topic, key, self.codec.encode(STRIPE_BALANCE_TRANSACTIONS.schema, record)

    def payout_members(self, payout_id: str) -> list[tuple[str, str, bytes]]:
        """Every transaction of one payout, encoded with the payout id and member count (see `payouts`)."""
        return payouts.payout_members(self, payout_id)

    def _publish_listed(self, listed: Listed) -> int:
        batch = [self._encode(txn, raw) for txn, raw in sorted(listed, key=lambda t: int(t[0].get("created") or 0))]
        return self.publisher.publish_many_sync(batch, self.publish_timeout_s)

    def _publish(self, listed: Listed) -> int:
        """A page of the range listing: published, then its pending transactions watched (saved with the page)."""
        published = self._publish_listed(listed)
        watch(self._load(), listed)
        return published

    def _save(self) -> None:
        state = self._load()
        self.cursors.save(self.name, state, state.get("created"))

    def poll_once(self, now: float | None = None) -> int:
        """The range listing (page by page, checkpointed), the payouts that became final, then the pending
        transactions whose funds became available (`pending_watch`)."""
        state = self._load()
        now = time.time() if now is None else now
        published = self.listing.poll(state, now, self._publish, self._save)
        published += self._poll_payouts(state, int(now))
        published += self.pending.poll(state, int(now))
        self._save()
        return published

    @property
    def more(self) -> bool:
        """The range listing stopped at its page budget: poll again soon."""
        return self.listing.more

    def _poll_payouts(self, state: dict[str, Any], now: int) -> int:
        return payouts.poll_payouts(self, state, now)
