"""Every upsert the mappings emit names only fields, relationships and picklist values of the SFDX metadata."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from core_helpers import Payload, object_type_of
from core.common import EventMeta, MappingError
from core.config import MappingConfig
from core.mapping import SUPPORTED_OBJECT_TYPES, map_object
from core.payout_reconciliation import PayoutMember, reconcile_payout
from core.types.balance_transaction import map_balance_transaction
from paysync.paths import SALESFORCE_METADATA_DIR, SALESFORCE_PACKAGE_DIRS

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
STANDARD_FIELDS = {"Name", "Phone", "FirstName", "LastName", "Email", "CurrencyIsoCode"}


def _metadata() -> dict[str, dict[str, ET.Element]]:
    """Every object's fields over all package directories (the optional Orders package included)."""
    if not (SALESFORCE_METADATA_DIR / "objects").is_dir():
        pytest.skip("no SFDX metadata in salesforce/force-app yet")
    out: dict[str, dict[str, ET.Element]] = {}
    for root in SALESFORCE_PACKAGE_DIRS:
        for d in sorted(p for p in (root / "objects").iterdir() if p.is_dir()):
            out.setdefault(d.name, {}).update({f.name.removesuffix(".field-meta.xml"): ET.parse(f).getroot()
                                               for f in (d / "fields").glob("*.field-meta.xml")})
    return out


def _picklist_values(field: ET.Element) -> set[str | None]:
    """A picklist's values: inline, or from the global value set it names."""
    global_set = field.findtext("m:valueSet/m:valueSetName", namespaces=NS)
    if global_set:
        root = ET.parse(SALESFORCE_METADATA_DIR / "globalValueSets" / f"{global_set}.globalValueSet-meta.xml").getroot()
        return {v.findtext("m:fullName", namespaces=NS) for v in root.findall("m:customValue", NS)}
    return {v.findtext("m:fullName", namespaces=NS) for v in field.findall(".//m:valueSetDefinition/m:value", NS)}


def _all_upserts(payloads: list[Payload]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    opp = {"salesforce_opportunity_id": "0065g00000AbCdEAAV", "salesforce_order_id": "8015g00000XyZ12AAC"}
    for cfg in (MappingConfig(multi_currency=True, legal_entities={"platform": "P"}),
                MappingConfig(customer_target="Contact")):
        for p in payloads:
            object_type = object_type_of(p)
            if object_type not in SUPPORTED_OBJECT_TYPES:
                continue
            obj = dict(p.obj, metadata=opp, name="Jenny Rosen", email="j@example.com", phone="+1555")
            try:
                out.extend(map_object(object_type, obj, p.meta(object_type), cfg))
            except MappingError:
                continue  # the known malformed shapes; covered in test_mapping_fixtures
    bt = {"id": "txn_1", "source_id": "ch_1", "payout_id": "po_1", "livemode": False, "type": "charge",
          "reporting_category": "charge", "amount": 100, "fee": 3, "net": 97, "currency": "usd",
          "exchange_rate": "1.1", "available_on": 1, "created": 1, "status": "available"}
    for source, kind in (("ch_1", "charge"), ("re_1", "refund"), ("dp_1", "adjustment"), ("po_1", "payout")):
        out.extend(map_balance_transaction(dict(bt, source_id=source, type=kind, reporting_category=None,
                                                amount=-100 if kind == "adjustment" else 100), MappingConfig()))
    meta = EventMeta(None, None, 1, None, False, "1::")
    out.append(reconcile_payout("po_1", 97, "usd", [PayoutMember("txn_1", 100, 3, 97, "usd")], 1, meta, MappingConfig()))
    return out


def test_upserts_match_the_metadata(payloads: list[Payload]) -> None:
    meta = _metadata()
    upserts = _all_upserts(payloads)
    sobjects = {u["sobject"] for u in upserts}
    assert {"Account", "Contact", "Opportunity", "Order", "Stripe_Payment__c", "Stripe_Refund__c",
            "Stripe_Dispute__c", "Stripe_Invoice__c", "Stripe_Payout__c", "Stripe_Balance_Transaction__c"} <= sobjects
    for rec in upserts:
        fields = meta[rec["sobject"]]
        if rec["external_id_field"] != "Id":
            ext = fields[rec["external_id_field"]]
            assert ext.findtext("m:externalId", namespaces=NS) == "true", rec["external_id_field"]
        for name, value in rec["fields"].items():
            if name in STANDARD_FIELDS:
                continue
            assert name in fields, f"{rec['sobject']}.{name} is not in the metadata"
            el = fields[name]
            kind = el.findtext("m:type", namespaces=NS)
            if kind == "Picklist" and value is not None:
                values = _picklist_values(el)
                assert value in values, f"{rec['sobject']}.{name}={value!r}"
            if kind == "Text" and isinstance(value, str):
                assert len(value) <= int(el.findtext("m:length", namespaces=NS) or 255), name
            if kind == "Checkbox":
                assert value is None or isinstance(value, bool), name
        for ref in rec["parents"]:
            lookup = fields[ref["relationship"].removesuffix("__r") + "__c"]
            assert lookup.findtext("m:referenceTo", namespaces=NS) == ref["sobject"], ref
            parent_ext = meta[ref["sobject"]][ref["external_id_field"]]
            assert parent_ext.findtext("m:externalId", namespaces=NS) == "true"

