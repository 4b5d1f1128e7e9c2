"""Helpers of the core tests: real Stripe payloads, the data model's field table, upsert checks, lookups."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.common import EventMeta
from core.config import MappingConfig
from core.mapping import map_object
from core.order import encode_version, version_of
from paysync.codec import AvroCodec

COMMON_FIELDS = frozenset(
    {"Stripe_Account_Id__c", "Legal_Entity__c", "Livemode__c", "Last_Stripe_Event_Id__c", "Last_Stripe_Event_At__c"}
)


@dataclass(frozen=True)
class Payload:
    """One Stripe object found in a fixture file, with its event envelope facts when it had one."""

    file: str
    event_id: str | None
    event_type: str | None
    created: int
    account: str | None
    livemode: bool
    obj: dict[str, Any]

    def meta(self, object_type: str) -> EventMeta:
        version = encode_version(version_of(object_type, self.obj, self.created, self.event_id))
        return EventMeta(self.event_id, self.event_type, self.created, self.account, self.livemode, version)


def _objects(path: Path, root: Path) -> Iterator[Payload]:
    data = json.loads(path.read_text(encoding="utf-8"))
    name = str(path.relative_to(root))
    if data.get("object") == "list":
        events = data["data"]
    elif data.get("object") == "event":
        events = [data]
    else:
        events = []
    for ev in events:
        obj = ev["data"]["object"]
        yield Payload(name, ev["id"], ev["type"], ev["created"], ev.get("account"), bool(ev.get("livemode")), obj)
    if not events:
        obj = data["object"] if isinstance(data.get("object"), dict) else data
        created = obj.get("created") if isinstance(obj.get("created"), int) else 1_700_000_000
        yield Payload(name, None, None, created, None, bool(obj.get("livemode")), obj)


def load_payloads(stripe_fixtures: Path) -> list[Payload]:
    """Every Stripe object of the real payload files (recipes and the 176-type catalogue excluded)."""
    out: list[Payload] = []
    for path in sorted(stripe_fixtures.rglob("*.json")):
        if "stripe-cli-triggers" in path.parts or path.name == "fixtures3.json":
            continue
        out.extend(_objects(path, stripe_fixtures))
    return out


def object_type_of(p: Payload) -> str | None:
    """The Stripe type of a payload: its `object` field, or guessed from the file name for pay-rails data."""
    declared = p.obj.get("object")
    if isinstance(declared, str):
        return declared
    stem = Path(p.file).name.split(".")[0]
    return stem if stem in {"charge", "invoice", "customer"} else None


@dataclass(frozen=True)
class ObjectModel:
    external_id: str | None
    fields: frozenset[str]          # field API names (incl. relationship names like Account__r)
    picklists: dict[str, frozenset[str]]  # restricted picklist field -> its values


def parse_data_model(text: str) -> dict[str, ObjectModel]:
    """The object table of docs/data-model.md: sobject -> its external id and the names it lists."""
    model: dict[str, ObjectModel] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("Object", "---") or cells[0].startswith("-"):
            continue
        sobject = cells[0].split()[0]
        ext = re.findall(r"`([A-Za-z0-9_]+)`", cells[1])
        names = set(re.findall(r"`([A-Za-z0-9_]+)`", cells[2]))
        if not sobject.endswith("__c"):
            for piece in re.split(r"[;,]", cells[2]):  # plain standard fields: "Name (required)", "Phone"
                first = piece.strip().split(" ")[0].strip("`*")
                if re.fullmatch(r"[A-Z][A-Za-z_]*", first):
                    names.add(first)
        picklists = {
            name: frozenset(v.strip() for v in values.split(","))
            for name, values in re.findall(r"`([A-Za-z0-9_]+)` (?:restricted )?Picklist \(([^)]*)\)", cells[2])
        }
        if "common" in cells[2] or sobject.endswith("__c"):
            names |= COMMON_FIELDS
        if ext:
            names.add(ext[0])
        model[sobject] = ObjectModel(ext[0] if ext else None, frozenset(names), picklists)
    payment_statuses = model["Stripe_Payment__c"].picklists["Status__c"]
    for obj in model.values():  # "Picklist (Payment statuses)" refers to the payment's status values
        for name, values in list(obj.picklists.items()):
            if values == frozenset({"Payment statuses"}):
                obj.picklists[name] = payment_statuses
    return model


# Standard field that exists only in multi-currency orgs; the brief asks for it with multi_currency.
MULTI_CURRENCY_FIELD = "CurrencyIsoCode"
UPSERT_KEYS = frozenset({
    "sobject", "external_id_field", "external_id", "fields", "parents", "source_event_id", "version",
    "origin_topic", "origin_partition", "origin_offset", "ingested_at",
})


def assert_valid_upserts(upserts: list[dict[str, Any]], codec: AvroCodec, model: dict[str, ObjectModel]) -> None:
    """Every upsert fits the Avro schema and names only objects, fields and relationships of the data model."""
    for rec in upserts:
        assert set(rec) == UPSERT_KEYS
        codec.encode("paysync.SalesforceUpsert", rec)
        assert rec["sobject"] in model, rec["sobject"]
        obj = model[rec["sobject"]]
        expected_ext = obj.external_id or "Id"
        assert rec["external_id_field"] == expected_ext
        assert isinstance(rec["external_id"], str) and rec["external_id"]
        for name, value in rec["fields"].items():
            assert name in obj.fields or name == MULTI_CURRENCY_FIELD, f"{rec['sobject']}.{name} not in data model"
            assert value is None or type(value) in (bool, int, str), f"{name}={value!r}"
            if name in obj.picklists and value is not None:
                assert value in obj.picklists[name], f"{rec['sobject']}.{name}={value!r} not a picklist value"
        for ref in rec["parents"]:
            assert ref["relationship"] in obj.fields, ref
            assert model[ref["sobject"]].external_id == ref["external_id_field"], ref
            assert ref["external_id"]
        assert rec["origin_topic"] is None and rec["ingested_at"] is None



CFG = MappingConfig()
OPP = "0065g00000AbCdEAAV"   # 18-char Opportunity id
ORDER = "8015g00000XyZ12"    # 15-char Order id

# Old hand-written shapes that really are malformed (SOURCES.md): the mapping must reject them.
KNOWN_MALFORMED = {
    "stripe-ruby-mock/charge.dispute.closed.json": "MISSING_FIELD",   # no dispute id
    "stripe-ruby-mock/charge.dispute.updated.json": "MISSING_FIELD",  # no dispute id
    "stripe-ruby-mock/charge.updated.json": "MISSING_FIELD",          # no charge status
    "stripe-openapi/objects/invoice_payment.json": "BAD_CURRENCY",    # the spec's placeholder "currency"
}


def one(payloads: list[Payload], file: str, object_type: str | None = None) -> Payload:
    """The first payload of `file` (of `object_type`, when given)."""
    found = [p for p in payloads if p.file == file and (object_type is None or object_type_of(p) == object_type)]
    assert found, file
    return found[0]


def map_payload(p: Payload, object_type: str, cfg: MappingConfig = CFG) -> list[dict[str, Any]]:
    """`map_object` of a payload with its own event facts."""
    return map_object(object_type, p.obj, p.meta(object_type), cfg)


def by_sobject(upserts: list[dict[str, Any]], sobject: str) -> dict[str, Any]:
    """The one upsert of `sobject` among `upserts`."""
    found = [u for u in upserts if u["sobject"] == sobject]
    assert len(found) == 1, [u["sobject"] for u in upserts]
    return found[0]


def no_float(value: Any) -> None:
    """Raise when a float hides anywhere in `value`."""
    if isinstance(value, float):
        raise AssertionError(f"float in an upsert: {value!r}")
    if isinstance(value, dict):
        for v in value.values():
            no_float(v)
    if isinstance(value, list):
        for v in value:
            no_float(v)
