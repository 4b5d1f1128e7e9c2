"""One Stripe list (events or balance transactions of one account) polled so that nothing is missed.

An entry can appear in a list some time after its `created` second (late visibility, tap-stripe#45; issue 15
point 1), and Stripe lists newest first by `created`, so a late entry lands *behind* entries already seen.
Two kinds of poll:

- **tail** (most polls): `ending_before=<newest id listed>`, pages oldest first. One call per 100 new
  entries plus one, and exact for every entry listed in order ('Pagination': `ending_before` "defines your
  place in the list").
- **sweep** (every `deep_every_s`, the first poll, and whenever the tail has no anchor: a listing empty so far
  is swept a few more times at the idle tail's pace, then on the schedule): `created[gte]=cursor`
  newest first with `starting_after`. The cursor never passes the visibility horizon:
  `cursor = min(newest created seen, start of the previous sweep - horizon_s)`, so an entry that becomes
  visible up to `horizon_s` after its `created` is listed by the next sweep at the latest. Re-listed
  copies are dropped by the `seen` ids (and, after a crash, by the streams as copies of events already applied).

`hold_newest_s` (events poller with the delivered-events set only): the tail stops before entries created in the
last `hold_newest_s` seconds and leaves its anchor on the newest older entry, so the next tail lists them again, and
a sweep without an anchor lists up to `created[lt]=start - hold_newest_s` (its newest entry becomes the anchor the
tail goes on from); meanwhile their webhook usually reaches the topic and the poller's copy is dropped. Nothing
passes the anchor unpublished, so this only delays what the webhooks missed by one poll.

Every page is published before the next is fetched, and the position is saved after it (`state["sweep"]`
or `state["anchor"]`): a catch-up of days holds one page in memory, and a call that fails after its retries
loses nothing: the next poll resumes at the saved page. `seen` holds only ids the next sweep can list again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paysync.outcomes import Outcome
from producers.stripe_api import Page, StripeApi, StripeApiError

Listed = list[tuple[dict[str, Any], str]]  # (object, its JSON) pairs, oldest first
Publish = Callable[[Listed], int]
Save = Callable[[], None]


@dataclass(frozen=True)
class HorizonConfig:
    """`horizon_s`: the latest an entry may become visible after `created`; `deep_every_s`: time between sweeps."""

    horizon_s: int = 600
    deep_every_s: float = 300.0
    initial_lookback_s: int = 3600
    max_pages_per_poll: int = 50  # a catch-up yields to the other accounts after this many pages (resumes next turn)
    idle_tail_every_max: int = 8  # a listing whose tails found nothing is tailed every 2, 4 … up to 8 polls
    unanchored_sweeps: int = 3  # extra sweeps of a listing still empty (after 1, 2, 4 polls), then the schedule's
    hold_newest_s: int = 0  # the tail leaves entries created this recently to the next poll (0 = none)


class HorizonListing:
    """Polls `path` with fixed `params` for one account; its position lives in the caller's `state` dict."""

    def __init__(self, api: StripeApi, path: str, params: dict[str, Any], account: str | None,
                 config: HorizonConfig) -> None:
        self.api, self.path, self.params, self.account, self.config = api, path, params, account, config
        self.more = False  # the last poll stopped at `max_pages_per_poll` with more to list
        self._polls = 0
        self._idle_streak = 0  # tails in a row that found nothing (in memory: a restart tails at once)

    def _budget_spent(self, pages: int) -> bool:
        self.more = pages >= self.config.max_pages_per_poll
        return self.more

    def poll(self, state: dict[str, Any], now: float, publish: Publish, save: Save) -> int:
        """List what is new since the last poll, publish it page by page (saving after each); returns the count.

        A sweep first when one is due or under way, then the tail.
        """
        state.setdefault("seen", {})
        self.more = False
        published = 0
        last_sweep = state.get("last_sweep")
        if state.get("sweep") is not None or last_sweep is None or now - float(last_sweep) >= self.config.deep_every_s:
            published += self._sweep(state, now, publish, save)
            if self.more:
                return published  # the page budget is spent: the saved sweep resumes at the next poll
        elif not state.get("anchor"):
            return self._sweep_unanchored(state, now, publish, save)
        if not state.get("anchor") or self._skip_idle_tail():
            return published
        try:
            tailed, held = self._tail(state, now, publish, save)
            self._idle_streak = 0 if tailed or held else self._idle_streak + 1
            return published + tailed
        except StripeApiError as exc:
            if exc.outcome is not Outcome.SKIP:  # anything but "the anchor object is gone" is the caller's
                raise
            state["anchor"] = None  # the next poll sweeps
            state["last_sweep"] = None
            return published

    def _sweep_unanchored(self, state: dict[str, Any], now: float, publish: Publish, save: Save) -> int:
        """Nothing listed yet (a new account, a quiet type group), so there is no anchor to tail from: sweep
        instead, at the idle tail's pace, `unanchored_sweeps` times; after that a listing still empty waits for
        the scheduled sweeps (`deep_every_s`), so type groups that never have entries cost no more than before.
        Without this, a new account's first entries waited for the next scheduled sweep (300 s by default)."""
        if self._idle_streak >= self.config.unanchored_sweeps or self._skip_idle_tail():
            return 0
        swept = self._sweep(state, now, publish, save)
        self._idle_streak = 0 if swept else self._idle_streak + 1
        return swept

    def _skip_idle_tail(self) -> bool:
        """A quiet listing (e.g. invoice events on a payments-only account) is tailed less often; the sweeps
        still list everything, so only latency grows, never a gap."""
        self._polls += 1
        every = min(1 << min(self._idle_streak, 8), self.config.idle_tail_every_max)
        return self._polls % every != 0

    def _fresh(self, state: dict[str, Any], page: Page, floor: int) -> Listed:
        """The page's entries not published before, oldest first; remembers those a sweep can list again."""
        seen: dict[str, int] = state["seen"]
        fresh: Listed = []
        for obj, raw in reversed(list(zip(page.objects, page.raw))):
            oid = str(obj.get("id"))
            if oid in seen:
                continue
            fresh.append((obj, raw))
            created = int(obj.get("created") or 0)
            if created >= floor:
                seen[oid] = created
        return fresh

    def _tail(self, state: dict[str, Any], now: float, publish: Publish, save: Save) -> tuple[int, bool]:
        """(entries published, whether the newest were held back for the next poll)."""
        published = pages = 0
        floor = int(state.get("created") or 0)
        for page in self.api.list_newer(self.path, self.params, str(state["anchor"]), self.account):
            page, held = self._hold_newest(page, now)
            if page.objects:
                published += publish(self._fresh(state, page, floor))
                state["anchor"] = page.objects[0]["id"]
                state["anchor_created"] = int(page.objects[0].get("created") or 0)
                save()
            if held:
                return published, True
            pages += 1
            if self._budget_spent(pages):
                break
        return published, False

    def _hold_newest(self, page: Page, now: float) -> tuple[Page, bool]:
        """The page without its entries created in the last `hold_newest_s` (a prefix: newest first)."""
        if self.config.hold_newest_s <= 0:
            return page, False
        newest_kept = int(now) - self.config.hold_newest_s
        cut = 0
        while cut < len(page.objects) and int(page.objects[cut].get("created") or 0) > newest_kept:
            cut += 1
        if cut == 0:
            return page, False
        return Page(page.objects[cut:], page.raw[cut:], page.has_more), True

    def _new_sweep(self, state: dict[str, Any], now: float) -> dict[str, Any]:
        """What the next sweep lists: `[cursor, now - horizon)`; the first one everything since the look-back."""
        cursor = state.get("created")
        started = int(now)
        if cursor is None or not state.get("anchor"):  # up to now, or short of the newest held for the tail
            gte = int(cursor) if cursor is not None else max(0, started - self.config.initial_lookback_s)
            lt = started - self.config.hold_newest_s if self.config.hold_newest_s > 0 else None
            return {"gte": gte, "lt": lt, "starting_after": None, "started": started, "head": None}
        return {"gte": int(cursor), "lt": started - self.config.horizon_s, "starting_after": None,
                "started": started, "head": None}

    def _sweep(self, state: dict[str, Any], now: float, publish: Publish, save: Save) -> int:
        sweep: dict[str, Any] = state.get("sweep") or self._new_sweep(state, now)
        # only ids the next sweep can list again are remembered (flat memory in a catch-up of days)
        floor = int(sweep["started"]) - self.config.horizon_s
        published = pages = 0
        created = {"gte": int(sweep["gte"])} if sweep["lt"] is None else {"gte": int(sweep["gte"]), "lt": sweep["lt"]}
        if sweep["lt"] is not None and sweep["lt"] <= sweep["gte"]:
            self._close_sweep(state, sweep)
            return 0
        for page, after in self.api.list_all(self.path, {**self.params, "created": created}, self.account,
                                             sweep["starting_after"]):
            if page.objects and sweep["head"] is None:  # newest first: the first page holds the newest entry
                sweep["head"] = [page.objects[0]["id"], int(page.objects[0].get("created") or 0)]
            published += publish(self._fresh(state, page, floor))
            sweep["starting_after"] = after
            state["sweep"] = sweep
            save()
            pages += 1
            if self._budget_spent(pages) and page.has_more:
                return published
        self.more = False
        self._close_sweep(state, sweep)
        save()
        return published

    def _close_sweep(self, state: dict[str, Any], sweep: dict[str, Any]) -> None:
        """The cursor moves to `sweep start - horizon` (never back); what it can no longer list is forgotten.

        A tail anchor older than the sweep's newest entry (a catch-up) moves to it: the tail goes on from there.
        """
        cursor = max(int(sweep["started"]) - self.config.horizon_s, int(state.get("created") or 0))
        if sweep["lt"] is not None:  # never past what this sweep listed (a sweep held short by `hold_newest_s`)
            cursor = min(cursor, max(int(sweep["lt"]), int(state.get("created") or 0)))
        state["seen"] = {k: v for k, v in state["seen"].items() if v >= cursor}
        state["created"] = cursor
        head = sweep.get("head")
        if head and (not state.get("anchor") or int(state.get("anchor_created") or 0) < head[1]):
            state["anchor"], state["anchor_created"] = head
        state["last_sweep"] = int(sweep["started"])
        state["sweep"] = None
