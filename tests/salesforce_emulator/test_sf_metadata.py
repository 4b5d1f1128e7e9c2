"""Deploy-check of the SFDX project: every file parses, the model matches docs/data-model.md's rules, external
ids are unique and case-sensitive, the permission sets cover exactly the model (no delete, no modify-all), and the
emulator's loader reads every package directory (the optional Orders package left out on request)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulators.salesforce_emulator.metadata import NS, MetadataError, load_schema, source_dirs
from paysync.paths import (
    REPO_ROOT, SALESFORCE_METADATA_DIR, SALESFORCE_ORDERS_METADATA_DIR, SALESFORCE_PACKAGE_DIRS,
    SALESFORCE_PROJECT_DIR,
)

ROOT = SALESFORCE_METADATA_DIR
ORDERS = SALESFORCE_ORDERS_METADATA_DIR
# Standard fields paysync writes that take field-level security (required ones such as Account.Name cannot).
STANDARD_WRITTEN = {"Account.Phone", "Contact.FirstName", "Contact.Email", "Contact.Phone"}
CUSTOM = {"Stripe_Payment__c": "Stripe_Charge_Id__c", "Stripe_Refund__c": "Stripe_Refund_Id__c",
          "Stripe_Dispute__c": "Stripe_Dispute_Id__c", "Stripe_Invoice__c": "Stripe_Invoice_Id__c",
          "Stripe_Payout__c": "Stripe_Payout_Id__c",
          "Stripe_Balance_Transaction__c": "Stripe_Balance_Transaction_Id__c",
          "Stripe_Sync_Error__c": "Sync_Error_Key__c", "Stripe_Invoice_Payment__c": "Stripe_Invoice_Payment_Id__c"}
EVENT = "Stripe_Payment_Event__e"  # the platform event paysync publishes (issue 17)
COMMON = {"Stripe_Account_Id__c", "Legal_Entity__c", "Livemode__c", "Last_Stripe_Event_Id__c",
          "Last_Stripe_Event_At__c"}


def _text(el: ET.Element, tag: str) -> str | None:
    found = el.find(f"m:{tag}", NS)
    return found.text if found is not None else None


def _fields(root: Path) -> set[str]:
    """Every field that takes field-level security: not those of platform events ("All platform event fields are read
    only by default ... Field-level security permissions don't apply", "Considerations for Defining and Publishing
    Platform Events")."""
    return {f"{p.parent.parent.name}.{p.name.split('.')[0]}" for p in root.glob("objects/*/fields/*.field-meta.xml")
            if not p.parent.parent.name.endswith("__e")}


def _granted(permission_set: Path) -> dict[str | None, tuple[str | None, str | None]]:
    root = ET.parse(permission_set).getroot()
    return {_text(fp, "field"): (_text(fp, "readable"), _text(fp, "editable"))
            for fp in root.findall("m:fieldPermissions", NS)}


def test_sfdx_project_lists_the_main_and_the_orders_package() -> None:
    project = json.loads((REPO_ROOT / "salesforce" / "sfdx-project.json").read_text())
    assert [d["path"] for d in project["packageDirectories"]] == ["force-app", "orders"]
    assert [d.get("default", False) for d in project["packageDirectories"]] == [True, False]
    assert project["sourceApiVersion"] == "59.0"
    assert SALESFORCE_PACKAGE_DIRS == tuple(SALESFORCE_PROJECT_DIR / d["path"] / "main" / "default"
                                            for d in project["packageDirectories"])
    assert source_dirs(SALESFORCE_PROJECT_DIR) == list(SALESFORCE_PACKAGE_DIRS)
    assert source_dirs(ROOT) == list(SALESFORCE_PACKAGE_DIRS)  # the main folder brings the project with it
    assert source_dirs(ROOT, include_orders=False) == [ROOT]


def test_every_metadata_file_parses_with_the_metadata_namespace() -> None:
    files = [p for d in SALESFORCE_PACKAGE_DIRS for p in d.rglob("*-meta.xml")]
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


FIELD_FILES = sorted(p for d in SALESFORCE_PACKAGE_DIRS for p in d.glob("objects/*/fields/*.field-meta.xml"))


@pytest.mark.parametrize("path", FIELD_FILES, ids=lambda p: f"{p.parent.parent.name}.{p.stem}")
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


def test_permission_sets_cover_exactly_the_model() -> None:
    main = _granted(ROOT / "permissionsets" / "Paysync_Integration.permissionset-meta.xml")
    orders = _granted(ORDERS / "permissionsets" / "Paysync_Integration_Orders.permissionset-meta.xml")
    assert set(main) == _fields(ROOT) | STANDARD_WRITTEN
    assert set(orders) == _fields(ORDERS)  # each package grants exactly its own fields
    assert set(main.values()) | set(orders.values()) == {("true", "true")}
    main_root = ET.parse(ROOT / "permissionsets" / "Paysync_Integration.permissionset-meta.xml").getroot()
    objects = {_text(op, "object"): op for op in main_root.findall("m:objectPermissions", NS)}
    assert set(objects) == set(CUSTOM) | {"Account", "Contact", "Opportunity", EVENT}
    event = objects.pop(EVENT)  # publishing is Create; an event is never edited
    _assert_least(EVENT, event)
    assert (_text(event, "allowCreate"), _text(event, "allowRead"), _text(event, "allowEdit")) == ("true", "true", "false")
    for obj, op in objects.items():
        _assert_least(obj, op)
        assert _text(op, "allowEdit") == "true", obj
        assert _text(op, "allowCreate") == ("false" if obj == "Opportunity" else "true"), obj
    # The Orders set stands alone: object permission dependencies are checked per permission set ("Permission Read
    # Account depends on permission(s): Read Contact", trailheadapps/apex-recipes#22), so it repeats read access
    # to Order's parent Account (and Contact) and to the objects whose Order lookups it grants.
    orders_root = ET.parse(ORDERS / "permissionsets" / "Paysync_Integration_Orders.permissionset-meta.xml").getroot()
    objects = {_text(op, "object"): op for op in orders_root.findall("m:objectPermissions", NS)}
    assert set(objects) == {"Order", "Account", "Contact", "Stripe_Payment__c", "Stripe_Invoice__c"}
    for obj, op in objects.items():
        _assert_least(obj, op)
        assert _text(op, "allowCreate") == "false", obj
        assert _text(op, "allowEdit") == ("true" if obj == "Order" else "false"), obj


def _assert_least(obj: str | None, op: ET.Element) -> None:
    assert _text(op, "allowDelete") == "false" and _text(op, "modifyAllRecords") == "false", obj
    assert _text(op, "viewAllRecords") == "false" and _text(op, "allowRead") == "true", obj


def test_the_loader_reads_every_package_directory_and_can_leave_orders_out() -> None:
    full, without = load_schema(SALESFORCE_PROJECT_DIR), load_schema(SALESFORCE_PROJECT_DIR, include_orders=False)
    assert {n: o.key_prefix for n, o in load_schema(ROOT).objects.items()} == {
        n: o.key_prefix for n, o in full.objects.items()}
    assert "Stripe_Payment_Status__c" in full.objects["Order"].fields
    assert full.objects["Stripe_Payment__c"].fields["Order__c"].reference_to == "Order"
    assert "Order__c" in full.objects["Stripe_Invoice__c"].fields
    assert "Order" not in without.objects
    assert {n: o.key_prefix for n, o in without.objects.items()} == {
        n: o.key_prefix for n, o in full.objects.items() if n != "Order"}
    for obj in without.objects.values():
        assert all(f.reference_to != "Order" for f in obj.fields.values()), obj.name
        assert set(full.objects[obj.name].fields) - set(obj.fields) <= {"Order__c"}, obj.name


def test_a_lone_source_folder_is_read_alone(tmp_path: Path) -> None:
    copy = tmp_path / "metadata"
    shutil.copytree(ROOT, copy)
    schema = load_schema(copy)
    assert "Order__c" not in schema.objects["Stripe_Payment__c"].fields
    assert "Order" in schema.objects  # the standard object exists unless Orders are disabled


def _project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "salesforce"
    shutil.copytree(SALESFORCE_PROJECT_DIR, project)
    return project


def test_a_field_defined_in_two_package_directories_is_refused(tmp_path: Path) -> None:
    project = _project_copy(tmp_path)
    twin = project / "orders" / "main" / "default" / "objects" / "Stripe_Payout__c" / "fields"
    twin.mkdir(parents=True)
    shutil.copy(ROOT / "objects" / "Stripe_Payout__c" / "fields" / "Status__c.field-meta.xml", twin)
    with pytest.raises(MetadataError, match="Stripe_Payout__c.Status__c is defined twice"):
        load_schema(project)


def test_an_order_lookup_in_the_main_package_is_refused_without_orders(tmp_path: Path) -> None:
    project = _project_copy(tmp_path)
    lookup = "objects/Stripe_Payment__c/fields/Order__c.field-meta.xml"
    shutil.move(project / "orders" / "main" / "default" / lookup, project / "force-app" / "main" / "default" / lookup)
    assert "Order__c" in load_schema(project).objects["Stripe_Payment__c"].fields
    with pytest.raises(MetadataError, match="looks up Order"):
        load_schema(project, include_orders=False)
