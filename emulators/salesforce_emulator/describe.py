"""Describe results built from the metadata: global describe, sObject basic info and full describe."""

from __future__ import annotations

from typing import Any

from emulators.salesforce_emulator.metadata import FieldDef, ObjectDef, Schema

_TYPES = {"Text": "string", "Number": "double", "Checkbox": "boolean", "DateTime": "datetime", "Date": "date",
          "Picklist": "picklist", "Lookup": "reference", "Url": "url", "LongTextArea": "textarea",
          "Phone": "phone", "Email": "email", "Id": "id"}
_SOAP = {"string": "xsd:string", "double": "xsd:double", "boolean": "xsd:boolean", "datetime": "xsd:dateTime",
         "date": "xsd:date", "id": "tns:ID", "reference": "tns:ID"}


def _urls(obj: ObjectDef, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(obj: ObjectDef, version: str) -> dict[str, Any]:
    stored = not obj.platform_event  # an event is only created (published), never updated or queried
    return {"name": obj.name, "label": obj.label, "labelPlural": obj.plural_label, "keyPrefix": obj.key_prefix,
            "custom": obj.custom, "createable": True, "updateable": stored, "deletable": False, "queryable": stored,
            "retrieveable": True, "searchable": True, "layoutable": True, "urls": _urls(obj, version)}


def global_describe(schema: Schema, version: str) -> dict[str, Any]:
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [object_summary(o, version) for o in schema.objects.values()]}


def describe_field(f: FieldDef) -> dict[str, Any]:
    wire_type = _TYPES.get(f.type, "string")
    return {
        "name": f.name, "label": f.label, "type": wire_type, "soapType": _SOAP.get(wire_type, "xsd:string"),
        "length": f.length if wire_type not in ("double", "boolean", "date", "datetime") else 0,
        "precision": f.precision, "scale": f.scale, "digits": 0,
        "custom": f.custom, "nillable": not f.required and f.type != "Checkbox" and f.name != "Id",
        "createable": f.createable, "updateable": f.updateable, "unique": f.unique, "externalId": f.external_id,
        "idLookup": f.external_id or f.name == "Id", "caseSensitive": f.case_sensitive,
        "defaultedOnCreate": f.default is not None or not f.createable, "calculated": False,
        "autoNumber": f.name == "Name" and not f.createable, "filterable": True, "sortable": True,
        "defaultValue": f.default, "restrictedPicklist": f.restricted,
        "picklistValues": [{"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                           for v in f.picklist],
        "referenceTo": [f.reference_to] if f.reference_to else [],
        "relationshipName": f.relationship or None, "cascadeDelete": False,
    }


def describe(schema: Schema, obj: ObjectDef, version: str) -> dict[str, Any]:
    children = []
    for child in schema.objects.values():
        for f in child.fields.values():
            if f.reference_to == obj.name and f.child_relationship:
                children.append({"childSObject": child.name, "field": f.name, "cascadeDelete": False,
                                 "relationshipName": f.child_relationship + "__r"})
    out = object_summary(obj, version)
    out.update({"fields": [describe_field(f) for f in obj.fields.values()], "childRelationships": children,
                "recordTypeInfos": []})
    return out
