"""Orders are optional: the main package deploys in an org without Orders, the Orders package holds every
Order-related component (the Order fields, the `Order__c` lookups, their field-level security).

Metadata API "OrderSettings": "enableOrders — Indicates whether orders are enabled for the org (true) or not
(false)." Without it the Order object does not exist, so nothing the main package deploys may name it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from package_model import NS, custom_fields, package_dirs, permission_sets, unresolved_references
from paysync.paths import SALESFORCE_PROJECT_DIR

PROJECT = SALESFORCE_PROJECT_DIR


def _names_order(ref: str) -> bool:
    obj, _, field = ref.partition(".")
    return obj == "Order" or field == "Order__c"


def test_the_main_package_alone_names_nothing_an_org_without_orders_lacks() -> None:
    assert unresolved_references(PROJECT, ["force-app"]) == []


def test_both_packages_together_resolve() -> None:
    assert unresolved_references(PROJECT, ["force-app", "orders"]) == []


def test_every_order_component_is_in_the_orders_package() -> None:
    dirs = package_dirs(PROJECT)
    assert list(dirs) == ["force-app", "orders"]
    main_fields, order_fields = custom_fields(dirs["force-app"]), custom_fields(dirs["orders"])
    assert not [ref for ref, el in main_fields.items()
                if _names_order(ref) or el.findtext("m:referenceTo", namespaces=NS) == "Order"]
    # the links and Order's status, plus the audit trail on Order (issue 17) and any other Order.* field
    assert {"Order.Stripe_Payment_Status__c", "Stripe_Payment__c.Order__c", "Stripe_Invoice__c.Order__c",
            "Order.Synced_At__c", "Order.Last_Stripe_Event_Id__c", "Order.Last_Stripe_Event_At__c"} <= set(order_fields)
    assert {ref for ref in order_fields if not ref.startswith("Order.")} == {"Stripe_Payment__c.Order__c",
                                                                             "Stripe_Invoice__c.Order__c"}
    assert all(_names_order(ref) for ref in order_fields)
    assert not list((dirs["orders"] / "objects").glob("*/*.object-meta.xml")), "Orders defines no object"
    assert set(permission_sets(dirs["orders"])) == {"Paysync_Integration_Orders"}


def test_the_check_fails_when_the_main_permission_set_names_an_order_field(tmp_path: Path) -> None:
    project = tmp_path / "salesforce"
    shutil.copytree(PROJECT, project)
    main_set = project / "force-app/main/default/permissionsets/Paysync_Integration.permissionset-meta.xml"
    text = main_set.read_text()
    grant = ("    <fieldPermissions>\n        <editable>true</editable>\n"
             "        <field>Stripe_Payment__c.Order__c</field>\n"
             "        <readable>true</readable>\n    </fieldPermissions>\n")
    main_set.write_text(text.replace("    <fieldPermissions>\n", grant + "    <fieldPermissions>\n", 1))
    assert unresolved_references(project, ["force-app"]) == [
        "force-app/Paysync_Integration: field Stripe_Payment__c.Order__c"]
    assert unresolved_references(project, ["force-app", "orders"]) == []  # deployable only with Orders


def test_the_check_fails_when_an_order_lookup_sits_in_the_main_package(tmp_path: Path) -> None:
    project = tmp_path / "salesforce"
    shutil.copytree(PROJECT, project)
    lookup = Path("objects/Stripe_Invoice__c/fields/Order__c.field-meta.xml")
    shutil.move(project / "orders" / "main" / "default" / lookup, project / "force-app" / "main" / "default" / lookup)
    assert unresolved_references(project, ["force-app"]) == ["force-app: field Stripe_Invoice__c.Order__c → Order"]
