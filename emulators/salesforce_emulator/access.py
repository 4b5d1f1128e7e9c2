"""The integration user's access as its assigned permission sets grant it: what describe shows, and the
`PermissionSetAssignment` rows (for `paysync doctor`).

Every `*.permissionset-meta.xml` of the deployed package directories is deployed and, by default, assigned to
the integration user (as `salesforce/README.md` step 4 does). `POST /_emulator/permission_sets {"assigned":
[names]}` changes which are assigned (a user whose admin forgot `sf org assign permset`).

Describe follows them. "Understanding Describe Information Permissions" (Apex Developer Guide): "if you describe
account fields ... and you don't have access to all fields, not all fields are returned" — a field no assigned
permission set lets the user read is left out of describe; one it may read but not edit is `createable: false,
updateable: false`; the object's `createable`/`updateable` follow `allowCreate`/`allowEdit`. Required fields and
system fields take no field-level security (`salesforce/README.md`: "Required fields must NEVER appear in list of
field permissions"): they follow the object. Objects and fields no deployed permission set names keep the
metadata's flags (the emulator models the package's own permission sets, not the profile).

`PermissionSetAssignment` (Object Reference): "As of Summer '20 and later, only users who have one of these
permissions can access this object: View Setup and Configuration, Assign Permission Sets, Manage User". Without
View Setup (the package grants none) a query on it answers as for any object the user cannot access: 400
`INVALID_TYPE` "sObject type 'PermissionSetAssignment' is not supported." (the text of Salesforce's answer for an
inaccessible object; the page does not give it).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.salesforce_emulator.metadata import NS, MetadataError, source_dirs
from emulators.salesforce_emulator.wire import Response, error, json_response

_FROM_PSA = re.compile(r"\bFROM\s+PermissionSetAssignment\b", re.IGNORECASE)
_SYSTEM = frozenset({"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted", "Name"})


@dataclass(frozen=True)
class Grant:
    """One permission set: object -> (create, edit, read); "Object.Field" -> (edit, read)."""

    name: str
    objects: dict[str, tuple[bool, bool, bool]]
    fields: dict[str, tuple[bool, bool]]


def _flag(el: ET.Element, tag: str) -> bool:
    return (el.findtext(f"m:{tag}", "", NS) or "").strip() == "true"


def parse_grant(path: Path) -> Grant:
    """One `<Name>.permissionset-meta.xml`."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise MetadataError(f"{path}: {exc}") from exc
    objects = {el.findtext("m:object", "", NS): (_flag(el, "allowCreate"), _flag(el, "allowEdit"),
                                                 _flag(el, "allowRead"))
               for el in root.findall("m:objectPermissions", NS)}
    fields = {el.findtext("m:field", "", NS): (_flag(el, "editable"), _flag(el, "readable"))
              for el in root.findall("m:fieldPermissions", NS)}
    return Grant(path.name.split(".")[0], objects, fields)


@dataclass
class Access:
    """The deployed permission sets and which of them are assigned to the integration user."""

    grants: dict[str, Grant]
    assigned: set[str] = field(default_factory=set)

    def _named_objects(self) -> set[str]:
        return {o for g in self.grants.values() for o in g.objects}

    def _named_fields(self) -> set[str]:
        return {f for g in self.grants.values() for f in g.fields}

    def object_flags(self, sobject: str) -> tuple[bool, bool, bool] | None:
        """(createable, updateable, readable) by the assigned sets; None when no deployed set names the object."""
        if sobject not in self._named_objects():
            return None
        got = [g.objects[sobject] for n, g in self.grants.items() if n in self.assigned and sobject in g.objects]
        return any(c for c, _, _ in got), any(e for _, e, _ in got), any(r for _, _, r in got)

    def field_flags(self, sobject: str, name: str) -> tuple[bool, bool] | None:
        """(editable, readable) by the assigned sets; None when no deployed set names the field."""
        key = f"{sobject}.{name}"
        if key not in self._named_fields():
            return None
        got = [g.fields[key] for n, g in self.grants.items() if n in self.assigned and key in g.fields]
        return any(e for e, _ in got), any(r for _, r in got)


def load_access(metadata_dir: Path) -> Access:
    """Every permission set of the package directories around `metadata_dir`, all assigned."""
    grants: dict[str, Grant] = {}
    for root in source_dirs(metadata_dir):
        for path in sorted((root / "permissionsets").glob("*.permissionset-meta.xml")):
            grant = parse_grant(path)
            grants[grant.name] = grant
    return Access(grants, set(grants))


def _field_view(access: Access, sobject: str, described: dict[str, Any], obj_edit: tuple[bool, bool]) -> bool:
    """Apply field-level security to one described field in place; False when the user may not read it."""
    if described["name"] in _SYSTEM or not described["nillable"] and described["type"] != "boolean":
        described["createable"] = described["createable"] and obj_edit[0]
        described["updateable"] = described["updateable"] and obj_edit[1]
        return True
    flags = access.field_flags(sobject, described["name"])
    if flags is None:
        return True
    editable, readable = flags
    described["createable"] = described["createable"] and editable and obj_edit[0]
    described["updateable"] = described["updateable"] and editable and obj_edit[1]
    return readable


def apply_to_describe(access: Access | None, described: dict[str, Any]) -> dict[str, Any]:
    """A full describe result as the integration user sees it (see the module docstring)."""
    if access is None:
        return described
    sobject = described["name"]
    flags = access.object_flags(sobject)
    obj_edit = (True, True) if flags is None else (flags[0], flags[1])
    described["createable"] = described["createable"] and obj_edit[0]
    described["updateable"] = described["updateable"] and obj_edit[1]
    described["fields"] = [f for f in described["fields"] if _field_view(access, sobject, f, obj_edit)]
    return described


def query(access: Access | None, view_setup: bool, soql: str, user_id: str, version: str) -> Response | None:
    """The answer to a SOQL query on `PermissionSetAssignment`; None for any other query."""
    if access is None or not _FROM_PSA.search(soql):
        return None
    if not view_setup:
        return error(400, "INVALID_TYPE", "sObject type 'PermissionSetAssignment' is not supported. If you are "
                     "attempting to use a custom object, be sure to append the '__c' after the entity name. Please "
                     "reference your WSDL or the describe call for the appropriate names.")
    rows = [{"attributes": {"type": "PermissionSetAssignment",
                            "url": f"/services/data/v{version}/sobjects/PermissionSetAssignment/0Pa{i:015d}"},
             "AssigneeId": user_id, "PermissionSet": {"attributes": {"type": "PermissionSet"}, "Name": name}}
            for i, name in enumerate(sorted(access.assigned), start=1)]
    return json_response(200, {"totalSize": len(rows), "done": True, "records": rows})


def admin(access: Access | None, method: str, body: Any) -> Response:
    """`GET|POST /_emulator/permission_sets`: the deployed and assigned permission sets; POST `{"assigned": [...]}`
    assigns exactly those (unknown names: 400)."""
    if access is None:
        return json_response(404, {"error": "no permission sets loaded"})
    if method == "POST":
        names = body.get("assigned") if isinstance(body, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) and n in access.grants for n in names):
            return json_response(400, {"error": f"assigned must list deployed permission sets: {sorted(access.grants)}"})
        access.assigned = set(names)
    return json_response(200, {"deployed": sorted(access.grants), "assigned": sorted(access.assigned)})
