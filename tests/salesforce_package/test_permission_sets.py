"""Field-level security for every field paysync writes, and least privilege.

The fields written are derived from the mappings' output (every Stripe payload of the shared fixtures plus a
customer carrying every allowed PII field, in both customer modes, plus balance transactions and payout
reconciliation). Each needs a readable + editable fieldPermissions entry in a permission set of the package that
defines the field, except where Salesforce allows none: required fields (Account.Name, Contact.LastName, any
`<required>true</required>`) and master-detail fields, which are required on the detail object — "Required fields
must NEVER appear in list of field permissions ... Master-detail fields are required fields on the child (detail)
object" (Salesforce's own forcedotcom/sf-skills, generating-permission-set), and `CurrencyIsoCode`, which exists
only in multi-currency orgs (CurrencySettings.enableMultiCurrency) so the package cannot name it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from package_model import NS, Grant, custom_fields, field_grants, package_dirs, permission_sets
from emulators.salesforce_emulator.metadata import load_schema
from paysync.paths import SALESFORCE_PROJECT_DIR
from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.mapping import SUPPORTED_OBJECT_TYPES, map_object
from core.payout_reconciliation import PayoutMember, reconcile_payout
from core.types.balance_transaction import map_balance_transaction
from sinks.audit import AUDIT_FIELDS

PROJECT = SALESFORCE_PROJECT_DIR
SCHEMA = load_schema(PROJECT)  # the emulator's reading: required flags of standard and custom fields
NO_FLS_POSSIBLE = {"CurrencyIsoCode"}  # only in multi-currency orgs; see the module docstring
FORBIDDEN_USER_PERMISSIONS = {"ViewSetup", "ModifyAllData", "ViewAllData", "ModifyMetadata", "CustomizeApplication",
                              "ManageUsers", "AuthorApex"}
CONFIGS = (MappingConfig(multi_currency=True, legal_entities={"platform": "P"}),
           MappingConfig(customer_target="Contact", multi_currency=True))
LINKS = {"salesforce_opportunity_id": "0065g00000AbCdEAAV", "salesforce_order_id": "8015g00000XyZ12AAC"}


def _stripe_objects(fixtures: Path) -> list[tuple[str, dict[str, Any], EventMeta]]:
    out = []
    for path in sorted(fixtures.rglob("*.json")):
        if "stripe-cli-triggers" in path.parts or path.name == "fixtures3.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        events = data["data"] if data.get("object") == "list" else [data] if data.get("object") == "event" else []
        for ev in events:
            obj = ev["data"]["object"]
            if isinstance(obj, dict) and obj.get("object") in SUPPORTED_OBJECT_TYPES:
                meta = EventMeta(ev["id"], ev["type"], ev["created"], ev.get("account"), False, f"{ev['created']}::")
                out.append((str(obj["object"]), obj, meta))
    return out


def _upserts(fixtures: Path) -> list[dict[str, Any]]:
    meta = EventMeta("evt_1", "customer.updated", 1, None, False, "1::")
    customer = {"id": "cus_1", "object": "customer", "name": "Jenny Rosen", "email": "j@example.com",
                "phone": "+15555550100", "currency": "usd", "metadata": {}}
    objects = [("customer", customer, meta), *_stripe_objects(fixtures)]
    out: list[dict[str, Any]] = []
    for cfg in CONFIGS:
        for kind, obj, event in objects:
            try:
                out.extend(map_object(kind, dict(obj, metadata={**(obj.get("metadata") or {}), **LINKS}), event, cfg))
            except MappingError:
                continue  # malformed shapes are dead-lettered, not written
    bt = {"id": "txn_1", "source_id": "ch_1", "payout_id": "po_1", "livemode": False, "type": "charge",
          "reporting_category": "charge", "amount": 100, "fee": 3, "net": 97, "currency": "usd",
          "exchange_rate": "1.1", "available_on": 1, "created": 1, "status": "available"}
    for source, kind in (("ch_1", "charge"), ("re_1", "refund"), ("dp_1", "adjustment"), ("po_1", "payout")):
        out.extend(map_balance_transaction(dict(bt, source_id=source, type=kind), CONFIGS[0]))
    out.append(reconcile_payout("po_1", 97, "usd", [PayoutMember("txn_1", 100, 3, 97, "usd")], 1, meta, CONFIGS[0]))
    return out


def fields_written(fixtures: Path) -> set[str]:
    """`Object.Field` for every field and parent lookup the mappings set."""
    written: set[str] = set()
    for rec in _upserts(fixtures):
        written |= {f"{rec['sobject']}.{name}" for name in rec["fields"]}
        written |= {f"{rec['sobject']}.{name}" for name in AUDIT_FIELDS}  # the sink stamps them on every record
        written |= {f"{rec['sobject']}.{p['relationship'].removesuffix('__r')}__c" for p in rec["parents"]}
        if rec["external_id_field"] != "Id":
            written.add(f"{rec['sobject']}.{rec['external_id_field']}")
    return written


def _no_fls_allowed(ref: str) -> bool:
    obj, _, name = ref.partition(".")
    if name in NO_FLS_POSSIBLE:
        return True
    field = SCHEMA.objects[obj].field(name)
    assert field is not None, f"{ref} is written but not in the model"
    return field.required or field.type == "MasterDetail"


def _home_package(ref: str) -> str:
    """The package whose permission set must grant `ref`: the one defining it, else (standard field) by object."""
    for package, source in package_dirs(PROJECT).items():
        if ref in custom_fields(source):
            return package
    return "orders" if ref.startswith("Order.") else "force-app"


def test_the_derivation_sees_the_standard_fields_and_the_order_links(stripe_fixtures: Path) -> None:
    written = fields_written(stripe_fixtures)
    assert {"Account.Phone", "Contact.FirstName", "Contact.Email", "Contact.Phone", "Account.Name",
            "Contact.LastName"} <= written
    assert {"Order.Stripe_Payment_Status__c", "Stripe_Payment__c.Order__c", "Stripe_Invoice__c.Order__c",
            "Opportunity.Stripe_Payment_Status__c", "Stripe_Refund__c.Payment__c", "Opportunity.Synced_At__c",
            "Order.Last_Stripe_Event_Id__c"} <= written


def test_every_field_written_has_read_and_edit_in_its_package(stripe_fixtures: Path) -> None:
    grants = field_grants(PROJECT)
    missing = []
    for ref in sorted(fields_written(stripe_fixtures)):
        if _no_fls_allowed(ref):
            assert ref not in grants, f"{ref}: Salesforce refuses field-level security on it"
            continue
        wanted = Grant({"force-app": "Paysync_Integration", "orders": "Paysync_Integration_Orders"}[
            _home_package(ref)], _home_package(ref), True, True)
        if wanted not in grants.get(ref, []):
            missing.append(f"{ref} (needs {wanted.permission_set})")
    assert missing == []


def test_no_field_is_granted_twice() -> None:
    assert {ref: g for ref, g in field_grants(PROJECT).items() if len(g) > 1} == {}


def test_permission_sets_are_least_privilege() -> None:
    """No View Setup (the sink reads limits from the Sforce-Limit-Info header, not /limits), no Modify/View All
    Data, no delete, no View All / Modify All records or View All Fields."""
    seen = 0
    for source in package_dirs(PROJECT).values():
        for name, root in permission_sets(source).items():
            seen += 1
            enabled = {up.findtext("m:name", namespaces=NS) for up in root.findall("m:userPermissions", NS)
                       if up.findtext("m:enabled", namespaces=NS) == "true"}
            assert not enabled & FORBIDDEN_USER_PERMISSIONS, name
            assert enabled <= {"ApiEnabled"}, name
            for op in root.findall("m:objectPermissions", NS):
                for flag in ("allowDelete", "modifyAllRecords", "viewAllRecords", "viewAllFields"):
                    assert op.findtext(f"m:{flag}", namespaces=NS) in (None, "false"), (name, flag)
    assert seen == 2
