"""Deploy-check of the SFDX project: every file parses, the model matches docs/data-model.md's rules, external
ids are unique and case-sensitive, and the permission set covers exactly the model (no delete, no modify-all)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulators.salesforce_emulator.metadata import NS, load_schema
from paysync.paths import REPO_ROOT, SALESFORCE_METADATA_DIR

ROOT = SALESFORCE_METADATA_DIR
CUSTOM = {"Stripe_Payment__c": "Stripe_Charge_Id__c", "Stripe_Refund__c": "Stripe_Refund_Id__c",
          "Stripe_Dispute__c": "Stripe_Dispute_Id__c", "Stripe_Invoice__c": "Stripe_Invoice_Id__c",
          "Stripe_Payout__c": "Stripe_Payout_Id__c",
          "Stripe_Balance_Transaction__c": "Stripe_Balance_Transaction_Id__c",
          "Stripe_Sync_Error__c": "Sync_Error_Key__c"}
COMMON = {"Stripe_Account_Id__c", "Legal_Entity__c", "Livemode__c", "Last_Stripe_Event_Id__c",
          "Last_Stripe_Event_At__c"}


def _text(el: ET.Element, tag: str) -> str | None:
    found = el.find(f"m:{tag}", NS)
    return found.text if found is not None else None


def test_sfdx_project_points_at_force_app() -> None:
    project = json.loads((REPO_ROOT / "salesforce" / "sfdx-project.json").read_text())
    assert [d["path"] for d in project["packageDirectories"]] == ["force-app"]
    assert project["sourceApiVersion"] == "59.0"


def test_every_metadata_file_parses_with_the_metadata_namespace() -> None:
    files = list(ROOT.rglob("*-meta.xml"))
    assert len(files) > 100
    for path in files:
        root = ET.parse(path).getroot()
        assert root.tag.startswith("{http://soap.sforce.com/2006/04/metadata}"), path
        if path.name.endswith(".field-meta.xml"):
            assert _text(root, "fullName") == path.name.split(".")[0], path


def test_custom_objects_follow_the_model_rules() -> None:
    for name in CUSTOM:
        root = ET.parse(ROOT / "objects" / name / f"{name}.object-meta.xml").getroot()
        assert _text(root, "sharingModel") == "ReadWrite"
        assert root.find("m:nameField/m:type", NS).text == "AutoNumber"  # type: ignore[union-attr]
        assert _text(root, "deploymentStatus") == "Deployed"
    schema = load_schema(ROOT)
    for name, ext in CUSTOM.items():
        obj = schema.objects[name]
        assert obj.external_id_fields() == [ext], name
        assert COMMON <= set(obj.fields), name
    for name in ("Account", "Contact"):
        assert schema.objects[name].external_id_fields() == ["Stripe_Customer_Id__c"]
        assert COMMON <= set(schema.objects[name].fields)


@pytest.mark.parametrize("path", sorted(ROOT.glob("objects/*/fields/*.field-meta.xml")), ids=lambda p: p.stem)
def test_field_rules(path: Path) -> None:
    root = ET.parse(path).getroot()
    ftype = _text(root, "type")
    if _text(root, "externalId") == "true":
        assert (ftype, _text(root, "length"), _text(root, "unique"), _text(root, "caseSensitive")) == (
            "Text", "255", "true", "true"), "external ids are Text(255), unique, case-sensitive"
    if ftype == "Lookup":
        assert _text(root, "deleteConstraint") == "SetNull"
        assert _text(root, "required") == "false"
        assert _text(root, "relationshipName")
    if ftype == "Number" and path.stem.endswith(("Amount__c", "Fee__c", "Net__c")):
        assert (_text(root, "precision"), _text(root, "scale")) == ("18", "3"), "money is Number(18, 3)"
    if ftype == "Picklist":
        assert root.find("m:valueSet/m:restricted", NS).text == "true"  # type: ignore[union-attr]


def test_child_relationship_names_are_unique_per_parent() -> None:
    schema = load_schema(ROOT)
    seen: dict[tuple[str, str], str] = {}
    for obj in schema.objects.values():
        for f in obj.fields.values():
            if f.type == "Lookup" and f.custom:
                key = (f.reference_to, f.child_relationship)
                assert key not in seen, f"{obj.name}.{f.name} clashes with {seen[key]}"
                seen[key] = f"{obj.name}.{f.name}"


def test_permission_set_covers_exactly_the_model() -> None:
    root = ET.parse(ROOT / "permissionsets" / "Paysync_Integration.permissionset-meta.xml").getroot()
    model_fields = {f"{p.parent.parent.name}.{p.name.split('.')[0]}"
                    for p in ROOT.glob("objects/*/fields/*.field-meta.xml")}
    granted = {}
    for fp in root.findall("m:fieldPermissions", NS):
        granted[_text(fp, "field")] = (_text(fp, "readable"), _text(fp, "editable"))
    assert set(granted) == model_fields
    assert set(granted.values()) == {("true", "true")}
    objects = {_text(op, "object"): op for op in root.findall("m:objectPermissions", NS)}
    assert set(objects) == set(CUSTOM) | {"Account", "Contact", "Opportunity", "Order"}
    for name, op in objects.items():
        assert _text(op, "allowDelete") == "false" and _text(op, "modifyAllRecords") == "false", name
        assert _text(op, "viewAllRecords") == "false" and _text(op, "allowRead") == "true", name
        assert _text(op, "allowEdit") == "true", name
        assert _text(op, "allowCreate") == ("false" if name in ("Opportunity", "Order") else "true"), name
