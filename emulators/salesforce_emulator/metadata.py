"""Load the data model from the SFDX project (`salesforce/`): the one source of truth.

`load_schema(root, include_orders=True)` returns a `Schema`: the custom objects and fields of every package
directory listed in `sfdx-project.json` plus the standard objects (Account, Contact, Opportunity, Order) with their
standard fields, each object with a real-looking key prefix (001, 003, 006, 801; a01… for custom objects in name
order, the same with or without Orders). `root` is the project folder, or a package's source folder inside it
(`paysync.paths.SALESFORCE_METADATA_DIR`: the project's other package directories come with it, as
`sf project deploy start` deploys them all), or a lone source folder outside any project (that folder only).
`include_orders=False` is an org without Orders ("OrderSettings": "enableOrders ... Indicates whether orders are
enabled for the org"): the optional `orders` package directory is left out and so is the standard Order object.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NS = {"m": "http://soap.sforce.com/2006/04/metadata"}


class MetadataError(Exception):
    """The metadata folder is missing or a file does not parse."""


@dataclass
class FieldDef:
    """One field as the emulator validates it; `type` is the metadata type (Text, Number, Lookup …)."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    required: bool = False
    unique: bool = False
    external_id: bool = False
    case_sensitive: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: str = ""
    child_relationship: str = ""
    custom: bool = True
    createable: bool = True
    updateable: bool = True
    default: object = None
    track_history: bool = False  # <trackHistory>true</trackHistory>: changes recorded when the object has history

    @property
    def relationship(self) -> str:
        """The child→parent name used in SOQL and CSV (`Payout__c` → `Payout__r`, `AccountId` → `Account`)."""
        if self.type != "Lookup":
            return ""
        if self.name.endswith("__c"):
            return self.name[:-3] + "__r"
        return self.name[:-2] if self.name.endswith("Id") else self.name


@dataclass
class ObjectDef:
    """One sObject: its fields by API name, its key prefix and whether it is custom."""

    name: str
    label: str
    plural_label: str
    key_prefix: str
    custom: bool
    fields: dict[str, FieldDef] = field(default_factory=dict)
    auto_number_format: str = ""
    history: bool = False  # <enableHistory>true</enableHistory>
    platform_event: bool = False  # a `__e` object: inserted (published) only, never stored or queried
    _lower: dict[str, str] = field(default_factory=dict)

    def add(self, f: FieldDef) -> None:
        self.fields[f.name] = f
        self._lower[f.name.lower()] = f.name

    def field(self, name: str) -> FieldDef | None:
        """The field named `name`, case-insensitively (as Salesforce resolves API names)."""
        canonical = self._lower.get(name.lower())
        return self.fields[canonical] if canonical else None

    def relationship(self, name: str) -> FieldDef | None:
        """The lookup field whose relationship name is `name` (`Payout__r`), case-insensitively."""
        low = name.lower()
        for f in self.fields.values():
            if f.type == "Lookup" and f.relationship.lower() == low:
                return f
        return None

    def external_id_fields(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.external_id]


@dataclass
class Schema:
    """Every sObject the emulator serves, by name (case-insensitive look-up via `get`)."""

    objects: dict[str, ObjectDef]

    def get(self, name: str) -> ObjectDef | None:
        for obj in self.objects.values():
            if obj.name.lower() == name.lower():
                return obj
        return None

    def by_prefix(self, record_id: str) -> ObjectDef | None:
        for obj in self.objects.values():
            if record_id.startswith(obj.key_prefix):
                return obj
        return None


def _system_fields(obj: ObjectDef) -> None:
    ro: dict[str, Any] = dict(custom=False, createable=False, updateable=False)
    obj.add(FieldDef("Id", "Record ID", "Id", length=18, external_id=False, unique=True, case_sensitive=True, **ro))
    for name, label in (("CreatedDate", "Created Date"), ("LastModifiedDate", "Last Modified Date"),
                        ("SystemModstamp", "System Modstamp")):
        obj.add(FieldDef(name, label, "DateTime", **ro))
    obj.add(FieldDef("IsDeleted", "Deleted", "Checkbox", default=False, **ro))


def _standard_objects() -> dict[str, ObjectDef]:
    std: dict[str, Any] = dict(custom=False)
    account = ObjectDef("Account", "Account", "Accounts", "001", False)
    account.add(FieldDef("Name", "Account Name", "Text", length=255, required=True, **std))
    account.add(FieldDef("Phone", "Account Phone", "Phone", length=40, **std))
    contact = ObjectDef("Contact", "Contact", "Contacts", "003", False)
    contact.add(FieldDef("LastName", "Last Name", "Text", length=80, required=True, **std))
    contact.add(FieldDef("FirstName", "First Name", "Text", length=40, **std))
    contact.add(FieldDef("Email", "Email", "Email", length=80, **std))
    contact.add(FieldDef("Phone", "Business Phone", "Phone", length=40, **std))
    contact.add(FieldDef("AccountId", "Account ID", "Lookup", reference_to="Account", **std))
    opp = ObjectDef("Opportunity", "Opportunity", "Opportunities", "006", False)
    opp.add(FieldDef("Name", "Name", "Text", length=120, required=True, **std))
    stages = ("Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
              "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost")
    opp.add(FieldDef("StageName", "Stage", "Picklist", required=True, picklist=stages, restricted=False, **std))
    opp.add(FieldDef("CloseDate", "Close Date", "Date", required=True, **std))
    opp.add(FieldDef("Amount", "Amount", "Number", precision=18, scale=2, **std))
    opp.add(FieldDef("AccountId", "Account ID", "Lookup", reference_to="Account", **std))
    order = ObjectDef("Order", "Order", "Orders", "801", False)
    order.add(FieldDef("AccountId", "Account ID", "Lookup", reference_to="Account", required=True, **std))
    order.add(FieldDef("Status", "Status", "Picklist", required=True, picklist=("Draft", "Activated"),
                       restricted=True, **std))
    order.add(FieldDef("EffectiveDate", "Order Start Date", "Date", required=True, **std))
    order.add(FieldDef("OrderNumber", "Order Number", "Text", length=30, createable=False, updateable=False, **std))
    out = {}
    for obj in (account, contact, opp, order):
        _system_fields(obj)
        out[obj.name] = obj
    return out


def _text(el: ET.Element, tag: str, default: str = "") -> str:
    found = el.find(f"m:{tag}", NS)
    return found.text or default if found is not None and found.text is not None else default


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise MetadataError(f"{path}: {exc}") from exc


ORDERS_PACKAGE_PATH = "orders"  # the `packageDirectories` path of the optional Orders package
ORDER = "Order"  # the standard object that exists only where Orders are enabled


def _global_value_sets(dirs: list[Path]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for root in dirs:
        for path in sorted((root / "globalValueSets").glob("*.globalValueSet-meta.xml")):
            name = path.name.split(".")[0]
            if name in out:
                raise MetadataError(f"{path}: global value set {name} is defined twice")
            out[name] = tuple(_text(v, "fullName") for v in _parse(path).findall("m:customValue", NS))
    return out


def parse_field(path: Path, global_sets: dict[str, tuple[str, ...]]) -> FieldDef:
    """One `*.field-meta.xml` as a `FieldDef`."""
    el = _parse(path)
    name = _text(el, "fullName") or path.name.split(".")[0]
    ftype = _text(el, "type")
    if not ftype:
        raise MetadataError(f"{path}: no <type>")
    f = FieldDef(name=name, label=_text(el, "label", name), type=ftype)
    f.length = int(_text(el, "length", "0") or 0)
    f.precision = int(_text(el, "precision", "0") or 0)
    f.scale = int(_text(el, "scale", "0") or 0)
    f.required = _text(el, "required") == "true"
    f.unique = _text(el, "unique") == "true"
    f.external_id = _text(el, "externalId") == "true"
    f.case_sensitive = _text(el, "caseSensitive") == "true"
    f.reference_to = _text(el, "referenceTo")
    f.child_relationship = _text(el, "relationshipName")
    f.track_history = _text(el, "trackHistory") == "true"
    if ftype == "Checkbox":
        f.default = _text(el, "defaultValue", "false") == "true"
    if ftype == "LongTextArea" and not f.length:
        f.length = 32768
    if ftype == "Url" and not f.length:
        f.length = 255
    value_set = el.find("m:valueSet", NS)
    if value_set is not None:
        f.restricted = _text(value_set, "restricted") == "true"
        global_name = _text(value_set, "valueSetName")
        if global_name:
            if global_name not in global_sets:
                raise MetadataError(f"{path}: unknown global value set {global_name}")
            f.picklist, f.restricted = global_sets[global_name], True
        else:
            values = value_set.findall("m:valueSetDefinition/m:value", NS)
            f.picklist = tuple(_text(v, "fullName") for v in values)
            # the value marked <default>true</default> is the field's value on create when the record omits it
            f.default = next((_text(v, "fullName") for v in values if _text(v, "default") == "true"), None)
    return f


def _package_paths(project: Path) -> list[str]:
    try:
        entries = json.loads((project / "sfdx-project.json").read_text(encoding="utf-8"))["packageDirectories"]
        return [str(entry["path"]) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MetadataError(f"{project / 'sfdx-project.json'}: {exc!r}") from exc


def _source_root(package_dir: Path) -> Path:
    """Where a package directory keeps its metadata: `main/default` by SFDX convention, else the folder itself."""
    default = package_dir / "main" / "default"
    return default if default.is_dir() else package_dir


def _enclosing_project(root: Path) -> Path | None:
    """The SFDX project `root` is, or whose package directory holds `root`; None for a lone source folder."""
    root = root.resolve()
    if (root / "sfdx-project.json").is_file():
        return root
    for parent in root.parents:
        if (parent / "sfdx-project.json").is_file():
            packages = [(parent / p).resolve() for p in _package_paths(parent)]
            return parent if any(root == pkg or pkg in root.parents for pkg in packages) else None
    return None


def source_dirs(root: Path, include_orders: bool = True) -> list[Path]:
    """The source folders `load_schema(root, include_orders)` reads, main package first."""
    project = _enclosing_project(root)
    if project is None:
        return [root]
    return [_source_root(project / p) for p in _package_paths(project)
            if include_orders or p.strip("/") != ORDERS_PACKAGE_PATH]


def _custom_objects(dirs: list[Path]) -> dict[str, ObjectDef]:
    """Every `<Name>__c.object-meta.xml` of `dirs`, with key prefixes a01… in name order."""
    found: dict[str, Path] = {}
    for root in dirs:
        for path in sorted((root / "objects").glob("*__c/*__c.object-meta.xml")):
            name = path.parent.name
            if name in found:
                raise MetadataError(f"{path}: object {name} is also defined in {found[name]}")
            found[name] = path
    out: dict[str, ObjectDef] = {}
    out.update(_platform_events(dirs))
    for i, name in enumerate(sorted(found), start=1):
        el = _parse(found[name])
        obj = ObjectDef(name, _text(el, "label", name), _text(el, "pluralLabel", name), f"a{i:02d}"[:3], True)
        name_field = el.find("m:nameField", NS)
        if name_field is None:
            name_field = ET.Element("nameField")  # no <nameField>: a Text name labelled "Name"
        name_type = _text(name_field, "type", "Text")
        obj.auto_number_format = _text(name_field, "displayFormat") if name_type == "AutoNumber" else ""
        obj.history = _text(el, "enableHistory") == "true"
        _system_fields(obj)
        auto = bool(obj.auto_number_format)
        obj.add(FieldDef("Name", _text(name_field, "label", "Name"), "Text",
                         length=80, custom=False, required=not auto, createable=not auto, updateable=not auto))
        out[name] = obj
    return out


def _platform_events(dirs: list[Path]) -> dict[str, ObjectDef]:
    """Every `<Name>__e.object-meta.xml` of `dirs` (prefixes e00… in name order), with the standard event fields.

    "Migrate Platform Event Definitions with Metadata API" (Platform Events Developer Guide): "The CustomObject
    metadata type represents a platform event. Platform event names are appended with __e." Their records have no
    Name; "The returned result also contains the Id system field" ("Publish Event Messages with Salesforce APIs")."""
    found = sorted({p.parent.name: p for root in dirs for p in (root / "objects").glob("*__e/*__e.object-meta.xml")}.items())
    out: dict[str, ObjectDef] = {}
    for i, (name, path) in enumerate(found):
        el = _parse(path)
        obj = ObjectDef(name, _text(el, "label", name), _text(el, "pluralLabel", name), f"e{i:02d}", True,
                        platform_event=True)
        ro: dict[str, Any] = dict(custom=False, createable=False, updateable=False)
        obj.add(FieldDef("Id", "Event ID", "Id", length=18, unique=True, case_sensitive=True, **ro))
        for fname, label in (("CreatedDate", "Created Date"), ("ReplayId", "Replay ID"), ("EventUuid", "Event UUID")):
            obj.add(FieldDef(fname, label, "DateTime" if fname == "CreatedDate" else "Text", length=36, **ro))
        out[name] = obj
    return out


def _add_fields(objects: dict[str, ObjectDef], dirs: list[Path], global_sets: dict[str, tuple[str, ...]],
                include_orders: bool) -> None:
    for root in dirs:
        for obj_dir in sorted(p for p in (root / "objects").glob("*") if p.is_dir()):
            obj = objects.get(obj_dir.name)
            if obj is None:
                why = "Orders are disabled" if obj_dir.name == ORDER and not include_orders else (
                    "not a known standard object and not custom")
                raise MetadataError(f"{obj_dir}: {why}")
            for path in sorted((obj_dir / "fields").glob("*.field-meta.xml")):
                f = parse_field(path, global_sets)
                if f.name in obj.fields:
                    raise MetadataError(f"{path}: {obj.name}.{f.name} is defined twice")
                if f.reference_to and f.reference_to not in objects:
                    raise MetadataError(f"{path}: looks up {f.reference_to}, which this org does not have")
                obj.add(f)


def load_schema(root: Path, include_orders: bool = True) -> Schema:
    """Read every object and field of the project at (or around) `root`; see the module docstring."""
    dirs = source_dirs(root, include_orders)
    if not any((d / "objects").is_dir() for d in dirs):
        raise MetadataError(f"no objects folder in {root}")
    objects = _standard_objects()
    if not include_orders:
        del objects[ORDER]
    objects.update(_custom_objects(dirs))
    _add_fields(objects, dirs, _global_value_sets(dirs), include_orders)
    return Schema(objects)
