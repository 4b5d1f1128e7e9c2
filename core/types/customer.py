"""customer -> Account (default) or Contact, by Stripe_Customer_Id__c. PII only per `pii_allowlist`."""

from __future__ import annotations

from typing import Any

from streams.mapping.common import (
    EventMeta, FieldValue, MappingConfig, check_object, common_fields, require_id, text, upsert,
)

NAME_LENGTH = 255  # Account.Name
LAST_NAME_LENGTH = 80  # Contact.LastName (standard field)
FIRST_NAME_LENGTH = 40  # Contact.FirstName (standard field)
PHONE_LENGTH = 40  # standard Phone fields
EMAIL_LENGTH = 80  # Contact.Email


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
