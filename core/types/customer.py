"""customer -> Account (default), Contact, or the Account and its Contact, by Stripe_Customer_Id__c. PII only per `pii_allowlist`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import statuses
from core.common import EventMeta, FieldValue, check_object, common_fields, parent, require_id, text, upsert
from core.config import MappingConfig
from core.spec import StripeType

NAME_LENGTH = 255  # Account.Name
LAST_NAME_LENGTH = 80  # Contact.LastName (standard field)
FIRST_NAME_LENGTH = 40  # Contact.FirstName (standard field)
PHONE_LENGTH = 40  # standard Phone fields
EMAIL_LENGTH = 80  # Contact.Email
EXTERNAL_ID = "Stripe_Customer_Id__c"


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Deleted is later than any live state."""
    return (statuses.flag(obj.get("deleted")),)


def _allowed(obj: dict[str, Any], key: str, cfg: MappingConfig) -> str | None:
    value = obj.get(key)
    if key not in cfg.pii_allowlist or not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def _contact_fields(obj: dict[str, Any], customer_id: str, name: str | None, cfg: MappingConfig) -> dict[str, FieldValue]:
    """Contact's own fields: LastName (required; the customer id when there is no name), FirstName, Email, Phone."""
    first, _, last = (name or "").rpartition(" ")
    fields: dict[str, FieldValue] = {
        "LastName": text(last.strip() or customer_id, LAST_NAME_LENGTH),
        "FirstName": text(first.strip(), FIRST_NAME_LENGTH) if name else None,
    }
    if "email" in cfg.pii_allowlist:
        email = _allowed(obj, "email", cfg)
        fields["Email"] = email if email and len(email) <= EMAIL_LENGTH else None
    if "phone" in cfg.pii_allowlist:
        fields["Phone"] = text(_allowed(obj, "phone", cfg), PHONE_LENGTH)
    return fields


def map_customer(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Account and/or Contact upserts of `cfg.customer_target`; [] for a deleted customer (nothing is deleted).

    AccountAndContact: the Account, then the customer's Contact under it (`AccountId` through the Account's
    external id, relationship `Account`), both keyed by Stripe_Customer_Id__c.
    """
    obj = check_object("customer", obj)
    customer_id = require_id(obj)
    if obj.get("deleted") is True or meta.event_type == "customer.deleted":
        return []
    currency = obj.get("currency") if isinstance(obj.get("currency"), str) else None
    common = common_fields(meta, cfg, currency)
    name = _allowed(obj, "name", cfg)
    out: list[dict[str, Any]] = []
    if cfg.customer_target in ("Account", "AccountAndContact"):
        account: dict[str, FieldValue] = {**common, "Name": text(name or customer_id, NAME_LENGTH)}
        if "phone" in cfg.pii_allowlist:
            account["Phone"] = text(_allowed(obj, "phone", cfg), PHONE_LENGTH)
        out.append(upsert("Account", EXTERNAL_ID, customer_id, account, meta.version, meta.event_id))
    if cfg.customer_target in ("Contact", "AccountAndContact"):
        contact = {**common, **_contact_fields(obj, customer_id, name, cfg)}
        parents = ([parent("Account", "Account", EXTERNAL_ID, customer_id)]
                   if cfg.customer_target == "AccountAndContact" else [])
        out.append(upsert("Contact", EXTERNAL_ID, customer_id, contact, meta.version, meta.event_id, parents))
    return out


SPEC = StripeType(
    name="customer", list_path="/v1/customers", rank=rank, mapper=map_customer,
    sobjects=("Account", "Contact"), external_id_field=EXTERNAL_ID, write_rank=10,
    backfill_order=-3,  # parents first: every payment and invoice points at its customer (issue 19 point 7)
)
