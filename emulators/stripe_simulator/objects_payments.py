"""Builders for customers, payment intents, charges and refunds, with the keys and value types of Stripe's own
examples (`stripe-openapi/fixtures3.json`). Builders return fresh dicts; the scenario mutates them in place."""

from __future__ import annotations

from typing import Any

_ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")


def _address() -> dict[str, Any]:
    return dict.fromkeys(_ADDRESS_KEYS)


def customer(cid: str, created: int, name: str, email: str, currency: str) -> dict[str, Any]:
    """A customer (`customer.created`)."""
    return {
        "id": cid, "object": "customer", "address": _address(), "balance": 0, "created": created,
        "currency": currency, "default_source": None, "delinquent": False, "description": None,
        "discount": None, "email": email, "invoice_prefix": cid[4:11].upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False, "metadata": {}, "name": name, "next_invoice_sequence": 1, "phone": None,
        "preferred_locales": [], "shipping": None, "tax_exempt": "none", "test_clock": None,
    }


def payment_intent(pid: str, created: int, amount: int, currency: str, customer_id: str,
                   capture_method: str, description: str | None) -> dict[str, Any]:
    """A payment intent in `requires_payment_method` (`payment_intent.created`)."""
    return {
        "id": pid, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
        "application_fee_amount": None, "automatic_payment_methods": {"enabled": True},
        "canceled_at": None, "cancellation_reason": None, "capture_method": capture_method,
        "client_secret": f"{pid}_secret_{pid[3:]}", "confirmation_method": "automatic", "created": created,
        "currency": currency, "customer": customer_id, "description": description,
        "last_payment_error": None, "latest_charge": None, "livemode": False, "metadata": {},
        "next_action": None, "on_behalf_of": None, "payment_method": None,
        "payment_method_configuration_details": None, "payment_method_options": {},
        "payment_method_types": ["card"], "processing": None, "receipt_email": None, "review": None,
        "setup_future_usage": None, "shipping": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "requires_payment_method", "transfer_data": None,
        "transfer_group": None, "source": None, "excluded_payment_method_types": None,
        "customer_account": None, "managed_payments": None,
    }


def _card_details(amount: int, brand: str, last4: str, country: str, fingerprint: str) -> dict[str, Any]:
    return {
        "card": {
            "amount_authorized": amount, "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": country, "exp_month": 8, "exp_year": 2030, "extended_authorization": {"status": "disabled"},
            "fingerprint": fingerprint, "funding": "credit", "incremental_authorization": {"status": "unavailable"},
            "installments": None, "last4": last4, "mandate": None, "multicapture": {"status": "unavailable"},
            "network": brand, "network_token": {"used": False},
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "three_d_secure": None, "wallet": None, "authorization_code": "123456", "regulated_status": "unregulated",
            "network_transaction_id": "1234567890123456", "transaction_link_id": None,
        },
        "type": "card",
    }


def charge(chid: str, created: int, pi: dict[str, Any], payment_method: str, brand: str, last4: str,
           country: str, fingerprint: str, billing_name: str, email: str) -> dict[str, Any]:
    """A charge for payment intent `pi`, status `pending` (the scenario sets the outcome)."""
    return {
        "id": chid, "object": "charge", "amount": pi["amount"], "amount_captured": 0, "amount_refunded": 0,
        "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {"address": _address(), "email": email, "name": billing_name, "phone": None,
                            "tax_id": None},
        "calculated_statement_descriptor": "PAYSYNC SIM", "captured": False, "created": created,
        "currency": pi["currency"], "customer": pi["customer"], "description": pi["description"],
        "disputed": False, "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
        "fraud_details": {}, "livemode": False, "metadata": {}, "on_behalf_of": None,
        "outcome": None, "paid": False, "payment_intent": pi["id"], "payment_method": payment_method,
        "payment_method_details": _card_details(pi["amount"], brand, last4, country, fingerprint),
        "receipt_email": None, "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{chid}", "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{chid}/refunds"},
        "review": None, "shipping": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "pending", "transfer_data": None, "transfer_group": None,
        "source": None,
    }


def outcome(approved: bool, risk_score: int) -> dict[str, Any]:
    """The charge's `outcome` block for an authorised or a declined card."""
    if approved:
        return {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                "risk_score": risk_score, "seller_message": "Payment complete.", "type": "authorized"}
    return {"advice_code": "try_again_later", "network_advice_code": None, "network_decline_code": "51",
            "network_status": "declined_by_network", "reason": "insufficient_funds", "risk_level": "normal",
            "risk_score": risk_score, "seller_message": "The bank returned the decline code `insufficient_funds`.",
            "type": "issuer_declined"}


def refund(rid: str, created: int, ch: dict[str, Any], amount: int, reason: str | None) -> dict[str, Any]:
    """A refund of `amount` of charge `ch`, status `pending` (the scenario sets the outcome)."""
    return {
        "id": rid, "object": "refund", "amount": amount, "balance_transaction": None, "charge": ch["id"],
        "created": created, "currency": ch["currency"],
        "destination_details": {"card": {"reference": None, "reference_status": "pending",
                                         "reference_type": "acquirer_reference_number", "type": "refund"},
                                "type": "card"},
        "metadata": {}, "payment_intent": ch["payment_intent"], "reason": reason, "receipt_number": None,
        "source_transfer_reversal": None, "status": "pending", "transfer_reversal": None,
        "customer": ch["customer"], "customer_account": None, "payment_method": ch["payment_method"],
    }
