"""customer -> Account (default) or Contact, by Stripe_Customer_Id__c. PII only per `pii_allowlist`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import statuses
from core.common import EventMeta, FieldValue, check_object, common_fields, require_id, text, upsert
from core.config import MappingConfig
from core.spec import StripeType

NAME_LENGTH = 255  # Account.Name
LAST_NAME_LENGTH = 80  # Contact.LastName (standard field)
FIRST_NAME_LENGTH = 40  # Contact.FirstName (standard field)
PHONE_LENGTH = 40  # standard Phone fields
EMAIL_LENGTH = 80  # Contact.Email


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Deleted is later than any live state."""
    return (statuses.flag(obj.get("deleted")),)


def _allowed(obj: dict[str, Any], key: str, cfg: MappingConfig) -> str | None:
    value = obj.get(key)
    if key not in cfg.pii_allowlist or not isinstance(value, str) or not value.strip():
        return None
    return value.strip()


def map_customer(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """One Account (or Contact) upsert; [] for a deleted customer (nothing is deleted in Salesforce)."""
    obj = check_object("customer", obj)
    customer_id = require_id(obj)
    if obj.get("deleted") is True or meta.event_type == "customer.deleted":
        return []
    currency = obj.get("currency") if isinstance(obj.get("currency"), str) else None
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    name = _allowed(obj, "name", cfg)
    phone = _allowed(obj, "phone", cfg)
    if cfg.customer_target == "Contact":
        first, _, last = (name or "").rpartition(" ")
        fields["LastName"] = text(last.strip() or customer_id, LAST_NAME_LENGTH)
        fields["FirstName"] = text(first.strip(), FIRST_NAME_LENGTH) if name else None
        if "email" in cfg.pii_allowlist:
            email = _allowed(obj, "email", cfg)
            fields["Email"] = email if email and len(email) <= EMAIL_LENGTH else None
        if "phone" in cfg.pii_allowlist:
            fields["Phone"] = text(phone, PHONE_LENGTH)
        sobject = "Contact"
    else:
        fields["Name"] = text(name or customer_id, NAME_LENGTH)
        if "phone" in cfg.pii_allowlist:
            fields["Phone"] = text(phone, PHONE_LENGTH)
        sobject = "Account"
    return [upsert(sobject, "Stripe_Customer_Id__c", customer_id, fields, meta.version, meta.event_id)]


SPEC = StripeType(
    name="customer", list_path="/v1/customers", rank=rank, mapper=map_customer,
    sobjects=("Account", "Contact"), external_id_field="Stripe_Customer_Id__c", write_rank=10,
    backfill_order=-3,  # parents first: every payment and invoice points at its customer (issue 19 point 7)
)
