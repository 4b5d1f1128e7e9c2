"""Shared pieces of every mapping: the input type, validation, conversions and the upsert shape.

Pure functions only: no Kafka, Faust or HTTP. Values put in upsert `fields` are only None, bool,
int or str (decimals, dates and datetimes as strings) — never floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from core.config import MappingConfig
from paysync.keys import ref_id
from paysync.money import to_decimal_str
from paysync.pan import redact_card_numbers

FieldValue = None | bool | int | str


@dataclass(frozen=True)
class EventMeta:
    """Where a snapshot came from: the event (or None for balance transactions / reconcile) and its version."""

    event_id: str | None
    event_type: str | None
    created: int
    account: str | None
    livemode: bool
    version: str


class MappingError(ValueError):
    """A malformed object of a supported type; the app dead-letters it. `code` names the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# ISO 4217 codes (active), lower case. Anything else is BAD_CURRENCY.
ISO_CURRENCIES = frozenset("""
aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob bov brl bsd btn bwp byn bzd
cad cdf che chf chw clf clp cny cop cou crc cuc cup cve czk djf dkk dop dzd egp ern etb eur fjd fkp gbp
gel ghs gip gmd gnf gtq gyd hkd hnl hrk htg huf idr ils inr iqd irr isk jmd jod jpy kes kgs khr kmf kpw
krw kwd kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk mnt mop mru mur mvr mwk mxn mxv myr mzn nad
ngn nio nok npr nzd omr pab pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle
sll sos srd ssp stn svc syp szl thb tjs tmt tnd top try ttd twd tzs uah ugx usd usn uyi uyu uyw uzs ved
ves vnd vuv wst xaf xag xau xba xbb xbc xbd xcd xcg xdr xof xpd xpf xpt xsu xts xua xxx yer zar zmw zwg zwl
""".split())

# Salesforce record ids: 15 or 18 alphanumeric characters with the object's key prefix.
_SFID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
OPPORTUNITY_PREFIX = "006"
ORDER_PREFIX = "801"


# Validation -----------------------------------------------------------------------------------

def require_id(obj: Mapping[str, Any], key: str = "id") -> str:
    """`obj[key]` as a non-empty string id; MappingError(MISSING_FIELD) otherwise."""
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise MappingError("MISSING_FIELD", f"{key} is missing or not a string id")
    return value


def require_amount(obj: Mapping[str, Any], key: str) -> int:
    """`obj[key]` as integer minor units; MappingError(BAD_AMOUNT) when absent or not an integer."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError("BAD_AMOUNT", f"{key} must be an integer number of minor units, got {value!r}")
    return value


def optional_amount(obj: Mapping[str, Any], key: str) -> int | None:
    """Like `require_amount` but None (absent or null) is allowed."""
    if obj.get(key) is None:
        return None
    return require_amount(obj, key)


def require_currency(obj: Mapping[str, Any], key: str = "currency") -> str:
    """`obj[key]` as a known ISO 4217 code, lower case; MappingError(BAD_CURRENCY) otherwise."""
    value = obj.get(key)
    if not isinstance(value, str) or value.lower() not in ISO_CURRENCIES:
        raise MappingError("BAD_CURRENCY", f"{key} is not a known ISO 4217 currency: {value!r}")
    return value.lower()


def require_status(table: Mapping[str, str], obj: Mapping[str, Any], object_type: str) -> str:
    """The picklist value for `obj["status"]`; MappingError(UNKNOWN_STATUS) when the table lacks it."""
    status = obj.get("status")
    if not isinstance(status, str) or status not in table:
        raise MappingError("UNKNOWN_STATUS", f"{object_type} status {status!r} has no mapping")
    return table[status]


def check_object(object_type: str, obj: Any) -> dict[str, Any]:
    """`obj` as a dict of that Stripe type (its `object` field, when present, must agree)."""
    if not isinstance(obj, dict):
        raise MappingError("BAD_OBJECT", f"{object_type} snapshot is not a JSON object")
    declared = obj.get("object")
    if declared is not None and declared != object_type:
        raise MappingError("BAD_OBJECT", f"expected a {object_type}, got object={declared!r}")
    return obj


def check_amount_object(object_type: str, obj: Any) -> tuple[dict[str, Any], str, str, int]:
    """(obj, id, currency, amount) of a snapshot with an id, a currency and an `amount`, checked in that order."""
    checked = check_object(object_type, obj)
    return checked, require_id(checked), require_currency(checked), require_amount(checked, "amount")


# Conversions ----------------------------------------------------------------------------------

def money(minor: int | None, currency: str) -> str | None:
    """Minor units -> exact decimal string in the currency's exponent (`paysync.money`); None stays None."""
    return None if minor is None else to_decimal_str(minor, currency)


def datetime_str(ts: Any) -> str | None:
    """Unix seconds -> `YYYY-MM-DDTHH:MM:SS.000Z` (UTC); None when absent; MappingError(BAD_TIMESTAMP) when not an int."""
    if ts is None:
        return None
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise MappingError("BAD_TIMESTAMP", f"timestamp must be integer unix seconds, got {ts!r}")
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def date_str(ts: Any) -> str | None:
    """Unix seconds -> `YYYY-MM-DD` (UTC date); None when absent."""
    text = datetime_str(ts)
    return None if text is None else text[:10]


def decimal_str(value: Any) -> str | None:
    """An exchange rate (JSON number, i.e. a float in Python, or a decimal string) -> exact decimal string.

    A float is read through `repr` (its shortest round-trip text), so no binary noise is introduced;
    no arithmetic is ever done on it. MappingError(BAD_DECIMAL) when it is not a finite number.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise MappingError("BAD_DECIMAL", f"not a decimal: {value!r}")
    try:
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, (int, str, Decimal)):
            number = Decimal(str(value))
        else:
            raise MappingError("BAD_DECIMAL", f"not a decimal: {value!r}")
    except InvalidOperation:
        raise MappingError("BAD_DECIMAL", f"not a decimal: {value!r}") from None
    if not number.is_finite():
        raise MappingError("BAD_DECIMAL", f"not a finite decimal: {value!r}")
    return format(number, "f")


def text(value: Any, length: int) -> str | None:
    """Free text truncated to the field length (never use it for ids); None for empty/absent.

    Card numbers someone typed into it (a description, a name) are redacted first: no card number
    may reach Salesforce, whatever a merchant put into a Stripe object.
    """
    if value is None:
        return None
    s = redact_card_numbers(str(value)[: 2 * length + 40])  # bounded work on 10 kB descriptions
    return s[:length] if s else None


def upper(currency: str) -> str:
    """Currency codes go to Salesforce upper case."""
    return currency.upper()


def salesforce_id(metadata: Any, keys: tuple[str, ...], prefix: str) -> str | None:
    """The first valid Salesforce id (15/18 chars, key prefix `prefix`) under one of `keys` in `metadata`."""
    if not isinstance(metadata, dict):
        return None
    for key in keys:
        value = metadata.get(key)
        if isinstance(value, str):
            value = value.strip()
            if _SFID.fullmatch(value) and value.startswith(prefix):
                return value
    return None


# The upsert shape -----------------------------------------------------------------------------

def parent(relationship: str, sobject: str, external_id_field: str, external_id: str) -> dict[str, str]:
    """A `paysync.ParentReference`: the child points at its parent by the parent's external id."""
    return {
        "relationship": relationship,
        "sobject": sobject,
        "external_id_field": external_id_field,
        "external_id": external_id,
    }


def upsert(
    sobject: str,
    external_id_field: str,
    external_id: str,
    fields: Mapping[str, FieldValue],
    version: str,
    source_event_id: str | None,
    parents: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A complete `paysync.SalesforceUpsert` dict; origin_* and ingested_at are left for the app."""
    for name, value in fields.items():
        if value is not None and not isinstance(value, (bool, int, str)):
            raise TypeError(f"{sobject}.{name}: {type(value).__name__} is not a Salesforce field value")
    return {
        "sobject": sobject,
        "external_id_field": external_id_field,
        "external_id": external_id,
        "fields": dict(fields),
        "parents": list(parents or []),
        "source_event_id": source_event_id,
        "version": version,
        "origin_topic": None,
        "origin_partition": None,
        "origin_offset": None,
        "ingested_at": None,
    }


def identity_fields(account: str | None, livemode: bool, cfg: MappingConfig) -> dict[str, FieldValue]:
    """Facts that never change for a record (any mapping may write them): account, legal entity, livemode."""
    fields: dict[str, FieldValue] = {"Stripe_Account_Id__c": account, "Livemode__c": bool(livemode)}
    entity = cfg.legal_entities.get(account or "platform")
    if entity is not None:
        fields["Legal_Entity__c"] = entity
    return fields


def common_fields(meta: EventMeta, cfg: MappingConfig, currency: str | None) -> dict[str, FieldValue]:
    """The common fields of a record written by its OWN object's mapping (includes Last_Stripe_Event_*)."""
    fields = identity_fields(meta.account, meta.livemode, cfg)
    if meta.event_id:  # a snapshot not from an event (re-fetch) leaves the last event as it was
        fields["Last_Stripe_Event_Id__c"] = meta.event_id
        fields["Last_Stripe_Event_At__c"] = datetime_str(meta.created)
    if cfg.multi_currency and currency:
        fields["CurrencyIsoCode"] = upper(currency)
    return fields


STATUS_VERSION_FIELD = "Stripe_Payment_Status_Version__c"


def payment_status_upserts(
    metadata: Any, status: str, meta: EventMeta, cfg: MappingConfig
) -> list[dict[str, Any]]:
    """Opportunity/Order upserts (by `Id`) setting Stripe_Payment_Status__c, for valid ids in `metadata`.

    Each carries the writer's ordering version in Stripe_Payment_Status_Version__c (`meta.version`, the order
    guard's `created:rank:event id`): several Stripe objects write one Opportunity's status (every charge attempt
    of a payment intent, the invoice, a canceled payment intent), so `sinks.status_versions` keeps the newest.
    """
    out: list[dict[str, Any]] = []
    fields: dict[str, FieldValue] = {"Stripe_Payment_Status__c": status, STATUS_VERSION_FIELD: meta.version}
    opp = salesforce_id(metadata, cfg.opportunity_metadata_keys, OPPORTUNITY_PREFIX)
    if opp:
        out.append(upsert("Opportunity", "Id", opp, fields, meta.version, meta.event_id))
    order = salesforce_id(metadata, cfg.order_metadata_keys, ORDER_PREFIX)
    if order:
        out.append(upsert("Order", "Id", order, fields, meta.version, meta.event_id))
    return out


def customer_parent(customer: Any, cfg: MappingConfig) -> list[dict[str, str]]:
    """The customer links of a payment or invoice, in every customer mode.

    Account: `Account__r`; Contact: `Contact__r`; AccountAndContact: both (by Stripe_Customer_Id__c, the
    external id the customer's Account and Contact share).
    """
    cus = ref_id(customer)
    if cus is None:
        return []
    links: list[dict[str, str]] = []
    if cfg.customer_target in ("Account", "AccountAndContact"):
        links.append(parent("Account__r", "Account", "Stripe_Customer_Id__c", cus))
    if cfg.customer_target in ("Contact", "AccountAndContact"):
        links.append(parent("Contact__r", "Contact", "Stripe_Customer_Id__c", cus))
    return links


def payment_parent(charge: Any) -> list[dict[str, str]]:
    """`Payment__r` -> Stripe_Payment__c by Stripe_Charge_Id__c, when the charge is known."""
    ch = ref_id(charge)
    return [parent("Payment__r", "Stripe_Payment__c", "Stripe_Charge_Id__c", ch)] if ch else []


def payout_parent(payout_id: str | None) -> list[dict[str, str]]:
    """`Payout__r` -> Stripe_Payout__c by Stripe_Payout_Id__c, when the payout is known."""
    return [parent("Payout__r", "Stripe_Payout__c", "Stripe_Payout_Id__c", payout_id)] if payout_id else []
