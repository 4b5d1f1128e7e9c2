"""What the org must have for this deployment: the objects the sink writes (`sinks.records.OBJECT_ORDER`, from
`core.registry`), trimmed by the mapping settings (the customer's target object; Order only when Orders are used),
each with the fields the SFDX package (`salesforce/`) defines for it and the standard fields its permission sets
grant edit on; and the permission sets to assign."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import registry
from core.config import MappingConfig
from emulators.salesforce_emulator.access import Grant, parse_grant
from emulators.salesforce_emulator.metadata import FieldDef, load_schema, source_dirs
from sinks.records import OBJECT_ORDER

MAIN_PERMISSION_SET = "Paysync_Integration"
ORDERS_PERMISSION_SET = "Paysync_Integration_Orders"

# "DisplayType Enum" (Apex Reference): the describe `type` of each field type — "STRING String values", "DOUBLE
# Double values", "BOOLEAN", "DATE", "DATETIME", "PICKLIST Single-select picklists", "REFERENCE Cross-references to
# a different object", "TEXTAREA", "URL", "CURRENCY", "PERCENT", "EMAIL", "PHONE"; metadata Number fields describe
# as double whatever their scale.
DESCRIBE_TYPES = {"Text": "string", "Number": "double", "Checkbox": "boolean", "Date": "date", "DateTime": "datetime",
                  "Picklist": "picklist", "MultiselectPicklist": "multipicklist", "Lookup": "reference",
                  "MasterDetail": "reference", "LongTextArea": "textarea", "TextArea": "textarea", "Url": "url",
                  "Currency": "currency", "Percent": "percent", "Email": "email", "Phone": "phone"}


@dataclass(frozen=True)
class ExpectedField:
    name: str
    describe_type: str | None  # None: a standard field whose type the package does not define
    reference_to: str = ""
    external_id: bool = False


@dataclass(frozen=True)
class ExpectedObject:
    """`create`: the sink inserts/upserts it (needs createable and updateable); else it only updates by Id."""

    name: str
    fields: tuple[ExpectedField, ...]
    create: bool


@dataclass(frozen=True)
class Expectation:
    objects: tuple[ExpectedObject, ...]
    permission_sets: dict[str, Grant]


def orders_used(cfg: MappingConfig) -> bool:
    """Orders are written when payments carry an Order id metadata key (`PAYSYNC_MAPPING_ORDER_METADATA_KEYS`)."""
    return bool(cfg.order_metadata_keys)


def _written_objects(cfg: MappingConfig) -> list[str]:
    # AccountAndContact writes both: nothing skipped for the customer
    other_customer = {"Account": {"Contact"}, "Contact": {"Account"}}.get(cfg.customer_target, set())
    skipped = other_customer | (set() if orders_used(cfg) else {"Order"})
    return [name for name in OBJECT_ORDER if name not in skipped]


def _package_field_names(dirs: list[Path], sobject: str) -> list[str]:
    return sorted({p.name.split(".")[0] for d in dirs for p in (d / "objects" / sobject / "fields").glob("*.field-meta.xml")})


def _expected_field(f: FieldDef, from_package: bool) -> ExpectedField:
    return ExpectedField(f.name, DESCRIBE_TYPES.get(f.type, f.type.lower()) if from_package else None,
                         f.reference_to, f.external_id)


def expectation(project: Path, cfg: MappingConfig) -> Expectation:
    """The objects, fields and permission sets `project` (the SFDX project) and the mapping settings call for."""
    with_orders = orders_used(cfg)
    dirs = source_dirs(project, include_orders=with_orders)
    schema = load_schema(project, include_orders=with_orders)
    sets = {p.name.split(".")[0]: parse_grant(p) for d in dirs
            for p in sorted((d / "permissionsets").glob("*.permissionset-meta.xml"))}
    wanted = [MAIN_PERMISSION_SET] + ([ORDERS_PERMISSION_SET] if with_orders else [])
    granted = {key for name in wanted if name in sets for key, (edit, _) in sets[name].fields.items() if edit}
    objects: list[ExpectedObject] = []
    for name in _written_objects(cfg):
        obj = schema.get(name)
        if obj is None:
            continue
        names = set(_package_field_names(dirs, name))
        standard = {k.split(".", 1)[1] for k in granted if k.startswith(name + ".")} - names
        fields = [_expected_field(obj.fields[n], True) for n in sorted(names) if n in obj.fields]
        fields += [ExpectedField(n, None) for n in sorted(standard)]
        objects.append(ExpectedObject(name, tuple(fields), name not in registry.LINKED_OBJECTS))
    return Expectation(tuple(objects), {n: sets[n] for n in wanted if n in sets})
