"""Webhook endpoints pinned to API versions: which rendering of an event each endpoint gets.

"Webhook endpoints keep their own API version": the webhook endpoint object's `api_version` is "The API version
events are rendered as for this webhook endpoint" (stripe-python 16.1 `_webhook_endpoint.py`), and an account
with an account endpoint on one version and a Connect endpoint on another receives both shapes side by side.

Shapes modelled: before basil (`2025-03-31.basil`) an invoice carries `charge`, `payment_intent`, `paid`,
`paid_out_of_band`, `application_fee_amount`, `transfer_data`, and charges and payment intents carry `invoice`
(changelog "Adds support for multiple (partial) payments on invoices": "Removed the payment_intent, charge, paid,
and paid_out_of_band fields from the Invoice object. Removed the invoice field from the PaymentIntent and Charge
objects."). `invoice_payment.paid` exists from `2025-05-28.basil` (changelog "Adds support for partial payments on
invoices": "We also introduced the invoice_payment.paid webhook"), so a pre-basil endpoint is never sent one
(a decision: the brief's "no invoice_payment events" on an old endpoint). Only these differences are rendered;
every other field keeps the pinned version's shape at every version.
"""

from __future__ import annotations

from .params import API_VERSION
from .records import EventRecord

_DATA_OBJECT = '"data":{"object":'
BASIL = "2025-03-31"
INVOICE_PAYMENT_EVENTS_SINCE = "2025-05-28"


def is_pre_basil(version: str) -> bool:
    """True for an API version whose invoice still links its charge and payment intent directly."""
    return version[:10] < BASIL


def render(record: EventRecord, version: str) -> str | None:
    """The event body as an endpoint on `version` receives it ("" = the pinned version); None = not sent there."""
    if not version or version == API_VERSION:
        return record.json
    if record.type.startswith("invoice_payment.") and version[:10] < INVOICE_PAYMENT_EVENTS_SINCE:
        return None
    # the envelope's api_version is the first one in the body (it comes before `data`)
    body = record.json.replace(f'"api_version":"{API_VERSION}"', f'"api_version":"{version}"', 1)
    if is_pre_basil(version) and record.legacy_fields not in (None, "{}"):
        # the legacy-only keys are never in the pinned object, so they are appended to it as they are
        assert record.legacy_fields is not None
        end = body.index(_DATA_OBJECT) + len(_DATA_OBJECT) + len(record.object_json)
        body = f"{body[:end - 1]},{record.legacy_fields[1:-1]}}}{body[end:]}"
    return body


def endpoint_version(account: str | None, account_version: str, connect_version: str) -> str:
    """The version of the endpoint an event goes to: the Connect endpoint for connected accounts' events."""
    return connect_version if account else account_version
