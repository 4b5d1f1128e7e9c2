"""Payment stories: a payment intent and its charge (succeeded, failed, or authorised then captured), then
perhaps a refund (partial or full, some failing) or a dispute (inquiry, or chargeback won or lost)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .engine import Engine
from .fx import convert, exchange_rate, processing_fee, rate_as_json_number
from .ledger import Account
from .objects_payments import charge, customer, outcome, payment_intent, refund
from .records import LEGACY_KEY
from .story_disputes import start_dispute

_AMOUNT_RANGE = {"usd": (500, 50000), "eur": (500, 40000), "gbp": (500, 30000), "jpy": (500, 50000),
                 "kwd": (1000, 100000)}
_CURRENCY_WEIGHTS = (50, 20, 10, 10, 10)
_NAMES = ("Jenny Rosen", "Ada Lovelace", "Grace Hopper", "Alan Turing", "Kenji Sato", "Fatima Al-Sabah")
_BRANDS = (("visa", "4242"), ("mastercard", "4444"), ("amex", "8431"))
_CUSTOMER_POOL = 500


def pick_customer(sim: Engine, account: Account) -> dict[str, Any]:
    """A returning customer, or a new one (`customer.created`); the pool per account is bounded."""
    if account.customers and sim.chance(0.7):
        return sim.rng.choice(account.customers)
    cid = sim.ids.new("cus")
    name = sim.rng.choice(_NAMES)
    cust = customer(cid, sim.now, name, f"{cid[4:12].lower()}@example.com", account.currency)
    sim.emit("customer.created", cust, account, request=True)
    if len(account.customers) >= _CUSTOMER_POOL:
        account.customers[sim.rng.randrange(_CUSTOMER_POOL)] = cust
    else:
        account.customers.append(cust)
    return cust


def draw_amount(sim: Engine) -> tuple[int, str]:
    """An amount in minor units and its currency."""
    currency = sim.rng.choices(sim.currencies, weights=_CURRENCY_WEIGHTS)[0]
    low, high = _AMOUNT_RANGE[currency]
    return sim.rng.randint(low, high), currency


Done = Callable[[Engine, bool, dict[str, Any]], None]


def start_payment(sim: Engine, account: Account, cust: dict[str, Any], amount: int, currency: str,
                  description: str | None, fail: bool, on_done: Done | None = None, follow_ups: bool = True,
                  invoice_id: str | None = None) -> None:
    """Create a payment intent and attempt its charge now; `on_done(sim, succeeded, pi)` when it settles.

    Both carry `invoice` at the legacy API version only (`LEGACY_KEY`; gone from basil on)."""
    manual = not fail and on_done is None and sim.chance(sim.p.manual_capture_rate)
    pi = payment_intent(sim.ids.new("pi"), sim.now, amount, currency, cust["id"],
                        "manual" if manual else "automatic_async", description)
    pi[LEGACY_KEY] = {"invoice": invoice_id}
    sim.emit("payment_intent.created", pi, account, request=True)
    brand, last4 = sim.rng.choice(_BRANDS)
    ch = charge(sim.ids.new("ch"), sim.now, pi, sim.ids.new("pm"), brand, last4, "US",
                f"fp{cust['id'][4:16]}", cust["name"], cust["email"])
    ch[LEGACY_KEY] = {"invoice": invoice_id}
    pi_prev = {"status": "requires_payment_method", "latest_charge": None, "payment_method": None}
    pi["latest_charge"], pi["payment_method"] = ch["id"], ch["payment_method"]
    if fail:
        ch.update(status="failed", failure_code="card_declined", failure_message="Your card has insufficient funds.",
                  outcome=outcome(False, sim.rng.randint(0, 60)))
        sim.emit("charge.failed", ch, account)
        pi["last_payment_error"] = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                                    "message": "Your card has insufficient funds.", "charge": ch["id"]}
        pi["latest_charge"], pi["payment_method"] = ch["id"], None
        sim.emit("payment_intent.payment_failed", pi, account, {"last_payment_error": None, "latest_charge": None})
        if on_done:
            on_done(sim, False, pi)
        return
    ch.update(status="succeeded", paid=True, outcome=outcome(True, sim.rng.randint(0, 60)))
    if manual:
        sim.emit("charge.succeeded", ch, account)
        pi.update(status="requires_capture", amount_capturable=amount)
        sim.emit("payment_intent.amount_capturable_updated", pi, account, {**pi_prev, "amount_capturable": 0})
        captured = amount
        if sim.chance(sim.p.partial_capture_rate):
            captured = max(1, amount * sim.rng.randint(30, 95) // 100)
        sim.at(sim.between(60, 900), _capture, account, pi, ch, captured)
        return
    ch.update(captured=True, amount_captured=amount)
    sim.emit("charge.succeeded", ch, account)
    pi.update(status="succeeded", amount_received=amount)
    sim.emit("payment_intent.succeeded", pi, account, pi_prev)
    _settle(sim, account, ch, follow_ups)
    if on_done:
        on_done(sim, True, pi)


def _capture(sim: Engine, account: Account, pi: dict[str, Any], ch: dict[str, Any], captured: int) -> None:
    """Capture `captured` of the authorisation; the rest is released.

    Partial capture as Stripe shows it: stripe-python `_charge.py` `amount_captured`: "Amount in cents (or local
    equivalent) captured (can be less than the amount attribute on the charge if a partial capture was made)"; the
    released remainder is reported in `amount_refunded` with `refunded` still false (public payload,
    woocommerce-gateway-stripe#1073: `amount` 20675, PI `amount_received` 20300, charge `amount_refunded` 375,
    `refunded` false). No money moves for the release: the balance transaction is of the captured amount only.
    No refund object is simulated for the release (its events are not documented).
    """
    released = ch["amount"] - captured
    previous: dict[str, Any] = {"captured": False, "amount_captured": 0}
    if released:
        previous["amount_refunded"] = ch["amount_refunded"]
    ch.update(captured=True, amount_captured=captured, amount_refunded=ch["amount_refunded"] + released)
    sim.emit("charge.captured", ch, account, previous, request=True)
    pi.update(status="succeeded", amount_received=captured, amount_capturable=0)
    sim.emit("payment_intent.succeeded", pi, account,
             {"status": "requires_capture", "amount_received": 0, "amount_capturable": ch["amount"]})
    _settle(sim, account, ch, True)


def _settle(sim: Engine, account: Account, ch: dict[str, Any], follow_ups: bool) -> None:
    """The charge's balance transaction (attached by a later `charge.updated`), then maybe a refund or dispute."""
    rate = exchange_rate(ch["currency"], account.currency)
    settled = convert(ch["amount_captured"], ch["currency"], account.currency, rate)
    fee = processing_fee(settled, account.currency)
    txn = sim.new_txn(account, amount=settled, fee=fee, source=ch["id"], txn_type="charge", category="charge",
                      description=ch["description"], rate=rate_as_json_number(rate))
    ch["balance_transaction"] = txn["id"]
    sim.emit("charge.updated", ch, account, {"balance_transaction": None})
    if not follow_ups:
        return
    roll = sim.rng.random()
    if roll < sim.p.refund_rate:
        full = sim.chance(0.5)
        captured = ch["amount_captured"]
        amount = captured if full else max(1, captured * sim.rng.randint(10, 90) // 100)
        sim.at(sim.between(60, 1800), _refund, account, ch, amount, rate, sim.chance(0.1))
    elif roll < sim.p.refund_rate + sim.p.dispute_rate:
        sim.at(sim.between(600, 3600), start_dispute, account, ch, rate)


def _refund(sim: Engine, account: Account, ch: dict[str, Any], amount: int, rate: Any, will_fail: bool) -> None:
    re = refund(sim.ids.new("re"), sim.now, ch, amount, sim.rng.choice((None, "requested_by_customer", "duplicate")))
    settled = convert(amount, ch["currency"], account.currency, rate)
    txn = sim.new_txn(account, amount=-settled, fee=0, source=re["id"], txn_type="refund", category="refund",
                      description="REFUND FOR CHARGE", rate=rate_as_json_number(rate))
    re["balance_transaction"] = txn["id"]
    re["status"] = "pending" if will_fail else "succeeded"
    sim.emit("refund.created", re, account, request=True)
    previous = {"amount_refunded": ch["amount_refunded"], "refunded": ch["refunded"]}
    ch["amount_refunded"] += amount
    # `refunded`: "Whether the charge has been fully refunded. If the charge is only partially refunded, this
    # attribute will still be false." (stripe-python `_charge.py`); a released remainder counts in `amount_refunded`
    ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
    sim.emit("charge.refunded", ch, account, previous)
    if will_fail:
        sim.at(sim.between(300, 1800), _refund_failed, account, re, settled, rate)


def _refund_failed(sim: Engine, account: Account, re: dict[str, Any], settled: int, rate: Any) -> None:
    txn = sim.new_txn(account, amount=settled, fee=0, source=re["id"], txn_type="refund_failure",
                      category="refund_failure", description="REFUND FAILURE", rate=rate_as_json_number(rate),
                      available_now=True)
    re.update(status="failed", failure_reason="expired_or_canceled_card", failure_balance_transaction=txn["id"])
    sim.emit("refund.updated", re, account, {"status": "pending"})
    sim.emit("refund.failed", re, account, {"status": "pending"})
