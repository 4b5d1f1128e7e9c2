"""Lists balance transactions by `created` range, and the members of every payout that reached
`paid` or `failed` (`?payout=`), publishing them to `stripe.balance_transactions`.

Each transaction is published once from the range listing (`payout_id` null) and again from its
payout's listing with `payout_id` and `payout_transaction_count` (members excluding the payout's
own `type=payout` transaction). `expand[]=data.source` rides in the same list call, so refunds and
disputes are keyed by their charge at no extra cost. Payouts already listed are kept in the cursor.
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
from producers.pollers.window import ListWindow
from producers.stripe_api import StripeApi

log = logging.getLogger(__name__)
FINAL_PAYOUT_STATUSES = frozenset({"paid", "failed"})
MAX_REMEMBERED = 50_000
_EXPAND = {"expand": ["data.source"]}


class BalanceTransactionsPoller:
    """One account's balance transactions and payouts. `poll_once()` returns how many records it published."""

    def __init__(self, api: StripeApi, publisher: KafkaPublisher, cursors: CursorStore, *, topic_prefix: str = "",
                 account: str | None = None, overlap_s: int = 300, initial_lookback_s: int = 3600,
                 recent_overlap_s: int | None = None, deep_every_s: float = 0.0,
                 payout_lookback_days: int = 14, publish_timeout_s: float = 30.0,
                 codec: AvroCodec | None = None, source: Source = "poll") -> None:
        self.api, self.publisher, self.cursors = api, publisher, cursors
        self.topic = STRIPE_BALANCE_TRANSACTIONS.full_name(topic_prefix)
        self.account = account
        self.name = f"balance_transactions:{account}" if account else "balance_transactions"
        self.overlap_s, self.initial_lookback_s = overlap_s, initial_lookback_s
        self.window = ListWindow(overlap_s, initial_lookback_s, recent_overlap_s, deep_every_s)
        self.payout_lookback_s = payout_lookback_days * 86400
        self.publish_timeout_s = publish_timeout_s
        self.codec = codec or AvroCodec()
        self.source = source
        self.state: dict[str, Any] | None = None

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
                                     payout_id=payout_id, payout_transaction_count=count)
        return self.topic, key, self.codec.encode(STRIPE_BALANCE_TRANSACTIONS.schema, record)

    def payout_members(self, payout_id: str) -> list[tuple[str, str, bytes]]:
        """Every transaction of one payout, encoded with the payout id and member count (see `payouts`)."""
        return payouts.payout_members(self, payout_id)

    def poll_once(self, now: float | None = None) -> int:
        state = self._load()
        now = time.time() if now is None else now
        since = self.window.since(state.get("created"), now)
        seen: dict[str, int] = state["seen"]
        fresh: list[tuple[dict[str, Any], str]] = []
        for page, _ in self.api.list_all("/v1/balance_transactions", {"created": {"gte": since}, **_EXPAND},
                                         self.account):
            fresh.extend((t, raw) for t, raw in zip(page.objects, page.raw) if t.get("id") not in seen)
        fresh.sort(key=lambda item: int(item[0].get("created") or 0))
        batch = [self._encode(txn, raw) for txn, raw in fresh]
        published = self.publisher.publish_many_sync(batch, self.publish_timeout_s)
        for txn, _ in fresh:
            seen[str(txn["id"])] = int(txn.get("created") or 0)
        published += self._poll_payouts(state, int(now))
        newest = max([state.get("created") or 0, *seen.values()]) or None
        horizon = (newest or 0) - self.overlap_s
        state["seen"] = dict(sorted(((k, v) for k, v in seen.items() if v >= horizon),
                                    key=lambda kv: kv[1])[-MAX_REMEMBERED:])
        state["created"] = newest
        self.cursors.save(self.name, state, newest)
        return published

    def _poll_payouts(self, state: dict[str, Any], now: int) -> int:
        return payouts.poll_payouts(self, state, now)
