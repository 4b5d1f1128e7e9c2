"""Reading the package's report types, reports, dashboards and Flows, and naming every reference that does not
resolve against the data model (the emulator's reading of the same package).

Custom report type columns are named `<base object>$<field>` and, for a joined child, `<base object>.<child
relationship>__r$<field>`; a report names its custom report type as `<report type>__c`. (Salesforce's reports
written in this form; the stored Metadata API pages do not spell the `$` form out.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from emulators.salesforce_emulator.metadata import ObjectDef, Schema

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}


def _texts(root: ET.Element, path: str) -> list[str]:
    return [el.text or "" for el in root.findall(path, NS)]


def child_object(schema: Schema, parent: str, relationship: str) -> ObjectDef | None:
    """The object whose lookup to `parent` has the child relationship `relationship` (`Foo__r`)."""
    name = relationship.removesuffix("__r")
    for obj in schema.objects.values():
        for f in obj.fields.values():
            if f.reference_to == parent and f.child_relationship == name:
                return obj
    return None


def resolve_table(schema: Schema, table: str) -> ObjectDef | None:
    """`Obj` or `Obj.Rel__r[.Rel2__r]` → the object at the end of the path."""
    base, *rels = table.split(".")
    obj = schema.get(base)
    for rel in rels:
        if obj is None:
            return None
        obj = child_object(schema, obj.name, rel)
    return obj


def column_problem(schema: Schema, column: str) -> str | None:
    """None when `Table$Field` names an existing field, else why not."""
    table, sep, field = column.partition("$")
    obj = resolve_table(schema, table) if sep else None
    if obj is None:
        return f"{column}: no object at {table!r}"
    return None if obj.field(field) is not None else f"{column}: {obj.name} has no field {field}"


def report_type_problems(schema: Schema, path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    base = root.findtext("m:baseObject", namespaces=NS) or ""
    problems = [] if schema.get(base) else [f"{path.name}: base object {base} does not exist"]
    for rel in _texts(root, "m:join/m:relationship"):
        if child_object(schema, base, rel) is None:
            problems.append(f"{path.name}: {base} has no child relationship {rel}")
    for col in root.findall("m:sections/m:columns", NS):
        ref = f"{col.findtext('m:table', namespaces=NS)}${col.findtext('m:field', namespaces=NS)}"
        if (p := column_problem(schema, ref)) is not None:
            problems.append(f"{path.name}: {p}")
    return problems


def report_columns(root: ET.Element) -> list[str]:
    """Every field a report names: columns, groupings, filters and its time frame."""
    return (_texts(root, "m:columns/m:field") + _texts(root, "m:groupingsDown/m:field")
            + _texts(root, "m:groupingsAcross/m:field") + _texts(root, "m:filter/m:criteriaItems/m:column")
            + _texts(root, "m:timeFrameFilter/m:dateColumn"))


def report_problems(schema: Schema, source: Path, path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    rtype = (root.findtext("m:reportType", namespaces=NS) or "").removesuffix("__c")
    type_file = source / "reportTypes" / f"{rtype}.reportType-meta.xml"
    if not type_file.is_file():
        return [f"{path.name}: report type {rtype} is not in the package"]
    type_root = ET.parse(type_file).getroot()
    offered = {f"{c.findtext('m:table', namespaces=NS)}${c.findtext('m:field', namespaces=NS)}"
               for c in type_root.findall("m:sections/m:columns", NS)}
    problems = []
    for column in report_columns(root):
        if (p := column_problem(schema, column)) is not None:
            problems.append(f"{path.name}: {p}")
        elif column not in offered:
            problems.append(f"{path.name}: {column} is not a column of report type {rtype}")
    return problems


def dashboard_problems(source: Path, path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [f"{path.name}: no report {ref}" for ref in _texts(root, ".//m:dashboardComponent/m:report")
            if not (source / "reports" / f"{ref}.report-meta.xml").is_file()]


def flow_problems(schema: Schema, path: Path) -> list[str]:
    """The start object and its filter fields exist, and the Flow ships inactive."""
    root = ET.parse(path).getroot()
    problems = []
    status = root.findtext("m:status", namespaces=NS)
    if status not in ("Draft", "Obsolete"):
        problems.append(f"{path.name}: status {status} (must ship inactive: Draft)")
    obj = schema.get(root.findtext("m:start/m:object", namespaces=NS) or "")
    if obj is None:
        return problems + [f"{path.name}: start object does not exist"]
    for field in _texts(root, "m:start/m:filters/m:field"):
        if obj.field(field) is None:
            problems.append(f"{path.name}: {obj.name} has no field {field}")
    for ref in root.iter():
        text = ref.text or ""
        if ref.tag.endswith("elementReference") and text.startswith("$Record."):
            first = text.split(".")[1]
            name = first.removesuffix("__r") + "__c" if first.endswith("__r") else first
            if obj.field(name) is None:
                problems.append(f"{path.name}: {text}: {obj.name} has no field {name}")
    return problems
