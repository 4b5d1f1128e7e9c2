"""customer -> Account or Contact, PII only per the allowlist; a deleted customer syncs nothing."""

from __future__ import annotations
import json
from typing import Any


from core_helpers import CFG, Payload, map_payload, one
from core.config import MappingConfig
from core.mapping import map_object


def test_customer_account_and_contact_modes_respect_pii_allowlist(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-ruby-mock/customer.updated.json")
    obj = dict(p.obj, name="Jenny Rosen", email="jenny@example.com", phone="+15555550100")
    meta = p.meta("customer")
    account = map_object("customer", obj, meta, CFG)[0]
    assert account["sobject"] == "Account" and account["external_id"] == obj["id"]
    assert account["fields"]["Name"] == "Jenny Rosen" and account["fields"]["Phone"] == "+15555550100"
    no_pii = map_object("customer", obj, meta, MappingConfig(pii_allowlist=frozenset()))[0]
    assert no_pii["fields"]["Name"] == obj["id"]
    assert "jenny" not in json.dumps(no_pii).lower() and "5555550100" not in json.dumps(no_pii)
    contact = map_object("customer", obj, meta, MappingConfig(customer_target="Contact"))[0]
    assert contact["sobject"] == "Contact"
    assert (contact["fields"]["FirstName"], contact["fields"]["LastName"]) == ("Jenny", "Rosen")
    assert contact["fields"]["Email"] == "jenny@example.com"
    unnamed = map_object("customer", dict(obj, name=""), meta, MappingConfig(customer_target="Contact"))[0]
    assert unnamed["fields"]["LastName"] == obj["id"]


def test_deleted_customer_syncs_nothing(payloads: list[Payload]) -> None:
    for file in ("stripe-ruby-mock/customer.deleted.json", "stripe-sync-engine/customer_deleted.json"):
        assert map_payload(one(payloads, file), "customer") == []
