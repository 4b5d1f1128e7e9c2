"""Every kind of Stripe request paysync makes, through the production client and pollers, against stripe-mock
(Stripe's mock validates each parameter against the OpenAPI spec: an unknown or mistyped one is a 400, which
`StripeApi` raises as `StripeApiError`), every answer parsed by the production parsers; and every object
fixture of stripe-mock's `fixtures3.json` mapped by `core` into fields that exist in the SFDX metadata."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "producers"))
from fake_stripe import FakeCursors, FakePublisher  # noqa: E402

from core import registry  # noqa: E402
from core.common import EventMeta  # noqa: E402
from core.config import mapping_config  # noqa: E402
from core.mapping import map_object  # noqa: E402
from core.types.balance_transaction import map_balance_transaction  # noqa: E402
from emulators.salesforce_emulator.metadata import load_schema  # noqa: E402
from paysync.codec import AvroCodec  # noqa: E402
from producers.balance_records import balance_record  # noqa: E402
from producers.envelope import envelope  # noqa: E402
from producers.pollers.accounts import AccountDirectory  # noqa: E402
from producers.pollers.balance_poller import BalanceTransactionsPoller  # noqa: E402
from producers.pollers.events_poller import EventsPoller  # noqa: E402
from producers.pollers.listing import HorizonConfig  # noqa: E402
from producers.stripe_api import StripeApi, StripeApiError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOW = int(time.time())
CODEC = AvroCodec()
FIXTURES = Path.home() / ".cache/paysync/go/pkg/mod/github.com/stripe/stripe-mock@v0.203.0/embedded/openapi"


@pytest.fixture
def api(stripe_mock: str) -> StripeApi:
    return StripeApi("sk_test_123", stripe_mock, rate_per_s=100, max_attempts=1)


def test_events_poller_sweep_and_tail(api: StripeApi) -> None:
    """created[gte] (+ created[lt]), types[], limit, starting_after (sweep) and ending_before (tail)."""
    pub, cursors = FakePublisher(), FakeCursors()
    poller = EventsPoller(api, pub, cursors, horizon=HorizonConfig(horizon_s=600, deep_every_s=300))  # type: ignore[arg-type]
    poller.poll_once(now=NOW)  # first sweep: created[gte], types[], limit=100
    poller.poll_once(now=NOW + 30)  # tail: ending_before the newest listed
    poller.poll_once(now=NOW + 400)  # a sweep of [cursor, now - horizon): created[gte] and created[lt]
    page = api.list_page("/v1/events", {"limit": 100, "starting_after": "evt_123", "types": ["charge.succeeded"]})
    for obj, raw in zip(page.objects, page.raw):
        envelope(obj, raw, "poll", NOW * 1000)  # the production parser accepts stripe-mock's event
    assert api.calls_made >= 4


def test_balance_poller_range_payouts_and_members(api: StripeApi) -> None:
    """balance_transactions with created and expand[]=data.source, payouts by created, members by payout."""
    pub, cursors = FakePublisher(), FakeCursors()
    poller = BalanceTransactionsPoller(api, pub, cursors, payout_lookback_days=14)  # type: ignore[arg-type]
    poller.poll_once(now=NOW)
    poller.poll_once(now=NOW + 400)
    page = api.list_page("/v1/balance_transactions", {"payout": "po_123", "limit": 100, "expand": ["data.source"]})
    for txn, raw in zip(page.objects, page.raw):
        _key, record = balance_record(txn, raw, source="poll", account=None, api_version=api.api_version,
                                      received_at_ms=NOW * 1000, payout_id="po_123", payout_transaction_count=1)
        CODEC.encode("paysync.StripeBalanceTransaction", record)
    assert pub.records, "stripe-mock lists a fixture balance transaction"


@pytest.mark.parametrize("spec", registry.backfill_types(), ids=lambda s: s.name)
def test_backfill_object_lists(api: StripeApi, spec: Any) -> None:
    """The backfill's lists: created[gte]/[lte], limit, starting_after on each type's list path."""
    pages = list(api.list_all(spec.list_path, {"created": {"gte": NOW - 86400, "lte": NOW}}))
    assert pages


@pytest.mark.parametrize("spec", [s for s in registry.TYPES if s.mapper is not None], ids=lambda s: s.name)
def test_retrieves_for_thin_events(api: StripeApi, spec: Any) -> None:
    """The v1 retrieve a thin event's `related_object` points at."""
    obj, _raw = api.retrieve(f"{spec.list_path}/{spec.name[:2]}_123", endpoint=f"{spec.list_path}/{{id}}")
    assert obj.get("object") == spec.name


def test_connected_accounts_listing(api: StripeApi) -> None:
    directory = AccountDirectory(api, fixed=["acct_fixed"])
    directory.refresh(NOW)
    assert "acct_fixed" in directory.accounts() and len(directory.accounts()) >= 2


def test_a_misspelled_parameter_is_refused(api: StripeApi) -> None:
    """The contract tests can fail: a parameter name stripe-mock does not know is a 400."""
    with pytest.raises(StripeApiError) as caught:
        api.list_page("/v1/events", {"limit": 10, "typez": ["charge.succeeded"]})
    assert caught.value.status == 400
    print(f"misspelled parameter: {caught.value}")


FIXTURE_TYPES = ("charge", "payment_intent", "refund", "dispute", "invoice", "invoice_payment", "payout",
                 "customer")


def _fixtures() -> dict[str, Any]:
    path = FIXTURES / "fixtures3.json"
    if not path.exists():
        pytest.skip("stripe-mock's module source is not in the Go module cache")
    resources: dict[str, Any] = json.loads(path.read_text())["resources"]
    return resources


def _check_fields(upserts: list[dict[str, Any]]) -> None:
    schema = load_schema(REPO / "salesforce")
    for upsert in upserts:
        obj = schema.get(upsert["sobject"])
        assert obj is not None, f"{upsert['sobject']} is not in the SFDX metadata"
        unknown = [f for f in [upsert["external_id_field"], *upsert["fields"]] if f not in obj.fields and f != "Id"]
        assert not unknown, f"{upsert['sobject']}: fields not in the metadata: {unknown}"


@pytest.mark.parametrize("object_type", FIXTURE_TYPES)
def test_fixture_objects_map_into_the_metadata(object_type: str) -> None:
    fixture = dict(_fixtures()[object_type])
    # stripe-mock's invoice_payment fixture holds placeholders (`"currency": "currency"`, `"status": "status"`)
    # that core rightly refuses (BAD_CURRENCY, UNKNOWN_STATUS); a real one has an ISO code and a status value
    for name, real in (("currency", "usd"), ("status", "paid")):
        if fixture.get(name) == name:
            fixture[name] = real
    if registry.find(object_type) is None or registry.find(object_type).mapper is None:  # type: ignore[union-attr]
        pytest.skip(f"core has no mapper for {object_type} yet")
    meta = EventMeta(event_id="evt_fixture", event_type=f"{object_type}.updated", created=NOW, account=None,
                     livemode=False, version="1")
    _check_fields(map_object(object_type, fixture, meta, mapping_config()))


def test_fixture_balance_transaction_maps_into_the_metadata() -> None:
    fixture = _fixtures()["balance_transaction"]
    _check_fields(map_balance_transaction(fixture, mapping_config()))
