"""The registry is the one list of Stripe types: every other list paysync keeps is read from it or equals it."""

from __future__ import annotations

import pytest

from core import registry
from core.mapping import SUPPORTED_OBJECT_TYPES
from core.order import lifecycle_rank
from ops.reconcile.salesforce_side import EXTERNAL_ID_FIELDS
from ops.reconcile.stripe_side import LISTED_TYPES
from paysync.keys import CHILDREN_OF_CHARGE, event_key
from producers.backfill import OBJECT_TYPES
from sinks.records import OBJECT_ORDER


def test_every_type_is_registered_once_with_a_list_path_and_an_external_id() -> None:
    names = [spec.name for spec in registry.TYPES]
    assert len(names) == len(set(names))
    for spec in registry.TYPES:
        assert spec.list_path.startswith("/v1/") and spec.sobjects and spec.external_id_field
        assert set(spec.statuses) <= set(spec.status_ranks)
        assert spec.terminal <= set(spec.status_ranks) or not spec.status_ranks


def test_the_sinks_write_order_is_the_registrys() -> None:
    # sinks/records.py keeps its own tuple (the sink's own error object last); it must not drift from the registry
    assert OBJECT_ORDER == (*registry.write_order(), "Stripe_Sync_Error__c")


def test_kafka_keys_group_the_registrys_charge_children_with_their_charge() -> None:
    assert CHILDREN_OF_CHARGE == registry.children_of_charge() == {"refund", "dispute"}
    for name in registry.children_of_charge():
        assert event_key(name, {"id": f"{name}_1", "charge": {"id": "ch_1"}}) == "ch_1"
    assert event_key("invoice", {"id": "in_1", "charge": "ch_1"}) == "in_1"


def test_every_list_reads_the_registry() -> None:
    assert SUPPORTED_OBJECT_TYPES == {spec.name for spec in registry.TYPES if spec.mapper is not None}
    assert dict(LISTED_TYPES) == {spec.name: spec.list_path[len("/v1/"):] for spec in registry.TYPES}
    assert list(OBJECT_TYPES.values()) == [
        "customer", "payment_intent", "charge", "refund", "dispute", "invoice", "payout", "invoice_payment"]  # backfill order: parents first
    assert dict(EXTERNAL_ID_FIELDS) == {
        "Account": "Stripe_Customer_Id__c", "Contact": "Stripe_Customer_Id__c",
        "Stripe_Payout__c": "Stripe_Payout_Id__c", "Stripe_Invoice__c": "Stripe_Invoice_Id__c",
        "Stripe_Payment__c": "Stripe_Charge_Id__c", "Stripe_Refund__c": "Stripe_Refund_Id__c",
        "Stripe_Dispute__c": "Stripe_Dispute_Id__c", "Stripe_Invoice_Payment__c": "Stripe_Invoice_Payment_Id__c",
        "Stripe_Balance_Transaction__c": "Stripe_Balance_Transaction_Id__c",
    }


@pytest.mark.parametrize("spec", registry.TYPES, ids=lambda s: s.name)
def test_the_order_guard_uses_each_types_own_rank(spec: registry.StripeType) -> None:
    obj = {"id": "x_1", "status": next(iter(spec.status_ranks), None)}
    assert lifecycle_rank(spec.name, obj) == spec.rank(obj)
    assert lifecycle_rank("no_such_type", obj) == ()
