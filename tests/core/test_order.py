"""Property tests of the order guard (streams.order) and of exact money conversion."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paysync.money import THREE_DECIMAL, ZERO_DECIMAL, to_decimal, to_decimal_str, to_minor
from core import registry, statuses
from core.common import EventMeta
from core.config import MappingConfig
from core.mapping import map_object
from core.order import Version, decode_version, encode_version, is_newer, lifecycle_rank, version_of

# Valid lifecycle paths per object type: each step a status reachable from the previous one.
PATHS: dict[str, list[list[str]]] = {
    "invoice": [["draft", "open", "paid"], ["draft", "open", "void"], ["draft", "open", "uncollectible", "paid"],
                ["draft", "open", "uncollectible", "void"]],
    "refund": [["pending", "succeeded"], ["pending", "requires_action", "succeeded", "failed"],
               ["pending", "canceled"]],
    "dispute": [["warning_needs_response", "warning_under_review", "warning_closed"],
                ["needs_response", "under_review", "won"], ["needs_response", "under_review", "lost"],
                ["warning_needs_response", "needs_response", "lost"]],
    "payout": [["pending", "in_transit", "paid"], ["pending", "in_transit", "paid", "failed"],
               ["pending", "canceled"]],
    "payment_intent": [["requires_payment_method", "requires_confirmation", "processing", "succeeded"],
                       ["requires_payment_method", "requires_action", "requires_capture", "canceled"]],
}


@st.composite
def histories(draw: Any) -> tuple[str, list[tuple[Version, dict[str, Any]]]]:
    """A valid history of one object: statuses along a path, `created` non-decreasing with many ties."""
    object_type = draw(st.sampled_from(sorted(PATHS)))
    path = draw(st.sampled_from(PATHS[object_type]))
    length = draw(st.integers(min_value=1, max_value=len(path)))
    created = 1_700_000_000
    events = []
    for i, status in enumerate(path[:length]):
        created += draw(st.integers(min_value=0, max_value=2))  # 0 = same second as the previous event
        for copy in range(draw(st.integers(min_value=1, max_value=2))):  # redeliveries, updated events
            obj = {"id": "x_1", "object": object_type, "status": status}
            event_id = f"evt_{draw(st.integers(min_value=0, max_value=10**6)):07d}_{i}_{copy}"
            events.append((version_of(object_type, obj, created, event_id), obj))
    return object_type, events


def fold(events: list[tuple[Version, dict[str, Any]]]) -> tuple[Version | None, list[str]]:
    """Apply only strictly newer versions; return the final version and the statuses applied in turn."""
    applied: Version | None = None
    seen: list[str] = []
    for version, obj in events:
        if is_newer(version, applied):
            applied = version
            seen.append(obj["status"])
    return applied, seen


@settings(max_examples=300, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_permutation_folds_to_the_same_state(history: Any, rnd: Any) -> None:
    object_type, events = history
    shuffled = list(events)
    rnd.shuffle(shuffled)
    final, _ = fold(events)
    final_shuffled, seen = fold(shuffled)
    assert final == final_shuffled == max(v for v, _ in events)
    # the object's final status is the last status of its real history
    assert dict((v, o["status"]) for v, o in events)[final] == events[-1][1]["status"]
    terminal = registry.BY_NAME[object_type].terminal
    for i, status in enumerate(seen):  # once a terminal state is applied it is never left
        if status in terminal:
            assert all(s in terminal for s in seen[i:]), seen


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**40),
    st.lists(st.integers(min_value=-5, max_value=10**9), max_size=6),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
)
def test_version_encoding_round_trips(created: int, rank: list[int], event_id: str) -> None:
    v: Version = (created, tuple(rank), event_id)
    assert decode_version(encode_version(v)) == v


def test_charge_rank_never_lets_refund_amount_decrease() -> None:
    base = {"status": "succeeded", "captured": True, "amount_captured": 1000, "refunded": False, "disputed": False}
    earlier = version_of("charge", dict(base, amount_refunded=200), 100, "evt_z")
    later = version_of("charge", dict(base, amount_refunded=500), 100, "evt_a")
    assert is_newer(later, earlier) and not is_newer(earlier, later)
    assert not is_newer(later, later)  # a redelivery is not newer
    assert is_newer(version_of("charge", base, 101, "evt_0"), later)  # a later second always wins
    assert lifecycle_rank("invoice", {"status": "paid"}) > lifecycle_rank("invoice", {"status": "open"})
    assert lifecycle_rank("unknown_type", {}) == ()


@settings(max_examples=500, deadline=None)
@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.sampled_from(sorted(ZERO_DECIMAL | THREE_DECIMAL | {"usd", "eur", "gbp", "JPY", "Bhd"})),
)
def test_money_round_trips_for_every_exponent(minor: int, currency: str) -> None:
    assert to_minor(to_decimal(minor, currency), currency) == minor
    assert to_minor(to_decimal_str(minor, currency), currency) == minor
    assert Decimal(to_decimal_str(minor, currency)) == to_decimal(minor, currency)


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(min_value=0, max_value=10**12),
    refunded=st.integers(min_value=0, max_value=10**12),
    currency=st.sampled_from(["usd", "jpy", "bhd", "krw", "kwd", "eur"]),
    status=st.sampled_from(["succeeded", "pending", "failed"]),
    captured=st.booleans(),
    disputed=st.booleans(),
    name=st.one_of(st.none(), st.text(max_size=300)),
)
def test_no_float_ever_appears_in_an_upsert(
    amount: int, refunded: int, currency: str, status: str, captured: bool, disputed: bool, name: str | None
) -> None:
    meta = EventMeta("evt_1", "charge.updated", 1_700_000_000, None, False, "1700000000:1:evt_1")
    charge = {"id": "ch_1", "object": "charge", "amount": amount, "amount_captured": amount if captured else 0,
              "amount_refunded": min(refunded, amount), "currency": currency, "status": status,
              "captured": captured, "disputed": disputed, "description": name, "created": 1_700_000_000,
              "metadata": {"salesforce_opportunity_id": "006000000000001AAA"}}
    upserts = map_object("charge", charge, meta, MappingConfig(multi_currency=True))
    for rec in upserts:
        for value in rec["fields"].values():
            assert value is None or type(value) in (bool, int, str)
    fields = upserts[0]["fields"]
    assert to_minor(fields["Amount__c"], currency) == amount
    assert fields["Status__c"] in statuses.PAYMENT_STATUSES


def test_same_second_ties_of_a_real_account_settle_by_lifecycle() -> None:
    """What the demo's real-account traffic showed: a completed reconciliation, a dispute's outcome after its
    appeal, and a deleted draft must each outrank the snapshot before it when both fall in one second."""
    from core.order import version_of

    def newer(t: str, later: dict[str, object], earlier: dict[str, object]) -> bool:
        return version_of(t, later, 100, "evt_a") > version_of(t, earlier, 100, "evt_z")

    paid = {"status": "paid", "reconciliation_status": "in_progress"}
    assert newer("payout", {**paid, "reconciliation_status": "completed"}, paid)
    for outcome in ("won", "lost"):
        assert newer("dispute", {"status": outcome}, {"status": "appeal_under_review"})
    assert newer("dispute", {"status": "appeal_under_review"}, {"status": "appeal_needs_response"})
    assert newer("dispute", {"status": "appeal_needs_response"}, {"status": "under_review"})
    assert newer("invoice", {"status": "draft", "deleted": True}, {"status": "draft"})
