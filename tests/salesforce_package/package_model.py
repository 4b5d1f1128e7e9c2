"""Reading the SFDX project as a deploy would: its package directories, fields and permission sets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
# Standard objects every org paysync supports has; Order exists only with OrderSettings.enableOrders.
ALWAYS_PRESENT = frozenset({"Account", "Contact", "Opportunity"})


@dataclass(frozen=True)
class Grant:
    """One fieldPermissions entry of a permission set."""

    permission_set: str
    package: str
    readable: bool
    editable: bool


def package_dirs(project: Path) -> dict[str, Path]:
    """packageDirectories path → its source folder (`<path>/main/default`), in sfdx-project.json order."""
    entries = json.loads((project / "sfdx-project.json").read_text(encoding="utf-8"))["packageDirectories"]
    return {str(e["path"]): project / str(e["path"]) / "main" / "default" for e in entries}


def custom_fields(source: Path) -> dict[str, ET.Element]:
    """`Object.Field` → the field's XML, for every field file of one source folder."""
    return {f"{p.parent.parent.name}.{p.name.split('.')[0]}": ET.parse(p).getroot()
            for p in sorted(source.glob("objects/*/fields/*.field-meta.xml"))}


def custom_objects(source: Path) -> set[str]:
    return {p.parent.name for p in source.glob("objects/*/*.object-meta.xml")}


def permission_sets(source: Path) -> dict[str, ET.Element]:
    return {p.name.split(".")[0]: ET.parse(p).getroot() for p in source.glob("permissionsets/*.permissionset-meta.xml")}


def field_grants(project: Path) -> dict[str, list[Grant]]:
    """`Object.Field` → every fieldPermissions entry naming it, across the project's permission sets."""
    out: dict[str, list[Grant]] = {}
    for package, source in package_dirs(project).items():
        for name, root in permission_sets(source).items():
            for fp in root.findall("m:fieldPermissions", NS):
                grant = Grant(name, package, fp.findtext("m:readable", namespaces=NS) == "true",
                              fp.findtext("m:editable", namespaces=NS) == "true")
                out.setdefault(fp.findtext("m:field", namespaces=NS) or "", []).append(grant)
    return out


def unresolved_references(project: Path, deployed: list[str], orders_enabled: bool | None = None) -> list[str]:
    """What the `deployed` package dirs name that the org would not have (Orders enabled iff the `orders` package
    is deployed, unless `orders_enabled` says otherwise).

    Salesforce fails the deploy of a permission set naming an absent field: "In field: field - no CustomField
    named Product2.TransferRecordMode found" (apex-enterprise-patterns/fflib-apex-common-samplecode#58); an
    absent object (Order without Orders enabled) fails the same way.
    """
    dirs = package_dirs(project)
    fields: set[str] = set()
    objects: set[str] = set(ALWAYS_PRESENT)
    if ("orders" in deployed) if orders_enabled is None else orders_enabled:
        objects.add("Order")
    for package in deployed:
        fields |= set(custom_fields(dirs[package]))
        objects |= custom_objects(dirs[package])
    problems: list[str] = []
    for package in deployed:
        for name, root in permission_sets(dirs[package]).items():
            for fp in root.findall("m:fieldPermissions", NS):
                ref = fp.findtext("m:field", namespaces=NS) or ""
                obj, _, field = ref.partition(".")
                if (field.endswith("__c") and ref not in fields) or obj not in objects:
                    problems.append(f"{package}/{name}: field {ref}")
            for op in root.findall("m:objectPermissions", NS):
                obj = op.findtext("m:object", namespaces=NS) or ""
                if obj not in objects:
                    problems.append(f"{package}/{name}: object {obj}")
        for ref, el in custom_fields(dirs[package]).items():
            target = el.findtext("m:referenceTo", namespaces=NS)
            if ref.split(".")[0] not in objects or (target and target not in objects):
                problems.append(f"{package}: field {ref}" + (f" → {target}" if target else ""))
    return problems
