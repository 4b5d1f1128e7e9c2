"""Org modes: the org paysync's package is deployed to, as it is on the first day.

`default`: a fresh org with the package and Orders enabled; org-wide defaults Public Read/Write.

`admins` (`--org-mode admins`, `start_emulator(..., org_mode="admins")`): the org as its admins leave it —
- a validation rule on `Stripe_Payment__c`, "Large_Payment_Needs_Description":
  `AND(ISBLANK(Description__c), Amount__c > 450)` → `FIELD_CUSTOM_VALIDATION_EXCEPTION` "Payments over 450 need a
  description for Finance." on `Description__c` (the simulator's amounts run 5–500, so it hits roughly one in ten of
  the payments that come without a description; every other payment lands);
- a required field added by an admin: `Stripe_Refund__c.Reason__c` (refunds without a Stripe reason are refused
  with `REQUIRED_FIELD_MISSING`; refunds are a small share of the writes, so the demo still mostly works);
- a private sharing model (Opportunity OWD Private): records owned by another user are invisible to the integration
  user — left out of SOQL, `NOT_FOUND` on GET, `INSUFFICIENT_ACCESS_OR_READONLY` on update, and
  `INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY` when a lookup names them. Three such Opportunities are
  pre-seeded (their ids in `GET /_emulator/stats` → `hidden_ids`); `POST /_emulator/seed` adds more;
- Orders disabled (the optional Orders package not deployed): no `Order` object (`INVALID_TYPE` / `NOT_FOUND`)
  and no lookup field to it (`Order__c` → `INVALID_FIELD`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from emulators.salesforce_emulator.metadata import Schema

MODES = ("default", "admins")
OTHER_OWNER_OPPORTUNITIES = 3


@dataclass
class Sharing:
    """Who sees what: with `private`, records in `hidden` (owned by another user) are invisible."""

    private: bool = False
    hidden: set[str] = field(default_factory=set)

    def visible(self, record_id: str) -> bool:
        return not (self.private and record_id in self.hidden)


@dataclass(frozen=True)
class ValidationRule:
    """An admin's validation rule: `rejects(record)` True → `FIELD_CUSTOM_VALIDATION_EXCEPTION` with `message`."""

    sobject: str
    name: str
    message: str
    error_field: str
    rejects: Callable[[dict[str, Any]], bool]


@dataclass
class OrgMode:
    name: str = "default"
    sharing: Sharing = field(default_factory=Sharing)
    rules: list[ValidationRule] = field(default_factory=list)

    def rules_for(self, sobject: str) -> list[ValidationRule]:
        return [r for r in self.rules if r.sobject == sobject]


def _large_payment_without_description(rec: dict[str, Any]) -> bool:
    amount = rec.get("Amount__c")
    return rec.get("Description__c") in (None, "") and isinstance(amount, Decimal) and amount > Decimal(450)


def _disable_orders(schema: Schema) -> None:
    schema.objects.pop("Order", None)
    for obj in schema.objects.values():
        for name in [n for n, f in obj.fields.items() if f.reference_to == "Order"]:
            del obj.fields[name]
            obj._lower.pop(name.lower(), None)


def apply_mode(name: str, schema: Schema) -> OrgMode:
    """The mode `name` (see module docstring); changes `schema` in place for `admins`. ValueError if unknown."""
    if name not in MODES:
        raise ValueError(f"unknown org mode {name!r}; known: {', '.join(MODES)}")
    if name == "default":
        return OrgMode()
    _disable_orders(schema)
    refund = schema.objects.get("Stripe_Refund__c")
    reason = refund.field("Reason__c") if refund else None
    if reason is not None:
        reason.required = True
    rule = ValidationRule("Stripe_Payment__c", "Large_Payment_Needs_Description",
                          "Payments over 450 need a description for Finance.", "Description__c",
                          _large_payment_without_description)
    return OrgMode("admins", Sharing(private=True), [rule])


def seed_other_owner_records(org: Any) -> None:
    """In a private-sharing org, make sure a few Opportunities owned by another user exist (idempotent)."""
    if not org.mode.sharing.private:
        return
    opp = org.schema.objects["Opportunity"]
    with org.store.lock:
        existing = sorted(rid for rid, rec in org.store.records["Opportunity"].items()
                          if str(rec.get("Name", "")).startswith("Other owner deal "))
        org.mode.sharing.hidden.update(existing)
        txn = org.store.txn()
        for n in range(len(existing), OTHER_OWNER_OPPORTUNITIES):
            values = {"Name": f"Other owner deal {n + 1}", "StageName": "Prospecting", "CloseDate": "2030-01-01"}
            result = org.dml.save(txn, opp, values, {}, "insert", as_admin=True)
            if result.id:
                org.mode.sharing.hidden.add(result.id)
        txn.commit()
