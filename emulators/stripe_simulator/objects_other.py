"""Builders for disputes, invoices, payouts and balance transactions, keyed and typed like Stripe's examples."""

from __future__ import annotations

from typing import Any

_EVIDENCE_KEYS = (
    "access_activity_log billing_address cancellation_policy cancellation_policy_disclosure cancellation_rebuttal "
    "customer_communication customer_email_address customer_name customer_purchase_ip customer_signature "
    "duplicate_charge_documentation duplicate_charge_explanation duplicate_charge_id product_description receipt "
    "refund_policy refund_policy_disclosure refund_refusal_explanation service_date service_documentation "
    "shipping_address shipping_carrier shipping_date shipping_documentation shipping_tracking_number "
    "uncategorized_file uncategorized_text"
).split()


def dispute(dpid: str, created: int, ch: dict[str, Any], amount: int, reason: str, inquiry: bool,
            due_by: int) -> dict[str, Any]:
    """A dispute on charge `ch`: `warning_needs_response` for an inquiry, else `needs_response`."""
    evidence: dict[str, Any] = dict.fromkeys(_EVIDENCE_KEYS)
    evidence["enhanced_evidence"] = {}
    card = ch["payment_method_details"]["card"]
    return {
        "id": dpid, "object": "dispute", "amount": amount, "balance_transactions": [], "charge": ch["id"],
        "created": created, "currency": ch["currency"], "evidence": evidence,
        "evidence_details": {"due_by": due_by, "has_evidence": False, "past_due": False, "submission_count": 0,
                             "enhanced_eligibility": {}},
        "is_charge_refundable": False, "livemode": False, "metadata": {}, "payment_intent": ch["payment_intent"],
        "payment_method_details": {"card": {"brand": card["brand"], "case_type": "inquiry" if inquiry else "chargeback",
                                            "network_reason_code": "10.4", "network": card["network"]},
                                   "type": "card"},
        "reason": reason, "status": "warning_needs_response" if inquiry else "needs_response",
        "enhanced_eligibility_types": [],
    }


def invoice(inid: str, created: int, cust: dict[str, Any], amount: int, currency: str, number: str,
            line_id: str, description: str, due_date: int) -> dict[str, Any]:
    """A `draft` invoice of one line for `cust`."""
    line = {
        "id": line_id, "object": "line_item", "amount": amount, "currency": currency, "description": description,
        "discount_amounts": [], "discountable": True, "discounts": [], "invoice": inid, "livemode": False,
        "metadata": {}, "period": {"end": created, "start": created}, "quantity": 1, "subscription": None,
        "pretax_credit_amounts": [], "taxes": [], "parent": None, "pricing": None, "subtotal": amount,
        "quantity_decimal": "1",
    }
    return {
        "id": inid, "object": "invoice", "account_country": "US", "account_name": "Paysync Simulated Account",
        "account_tax_ids": None, "amount_due": amount, "amount_paid": 0, "amount_remaining": amount,
        "amount_shipping": 0, "application": None, "attempt_count": 0, "attempted": False, "auto_advance": True,
        "automatic_tax": {"enabled": False, "liability": None, "status": None, "disabled_reason": None,
                          "provider": None},
        "billing_reason": "manual", "collection_method": "charge_automatically", "created": created,
        "currency": currency, "custom_fields": None, "customer": cust["id"], "customer_address": None,
        "customer_email": cust["email"], "customer_name": cust["name"], "customer_phone": None,
        "customer_shipping": None, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": None, "default_source": None, "default_tax_rates": [], "description": description,
        "discounts": [], "due_date": due_date, "effective_at": None, "ending_balance": None, "footer": None,
        "from_invoice": None, "hosted_invoice_url": None, "invoice_pdf": None, "issuer": {"type": "self"},
        "last_finalization_error": None, "latest_revision": None,
        "lines": {"object": "list", "data": [line], "has_more": False, "url": f"/v1/invoices/{inid}/lines"},
        "livemode": False, "metadata": {}, "next_payment_attempt": None, "number": number, "on_behalf_of": None,
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": created, "period_start": created, "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0, "receipt_number": None,
        "rendering": {"amount_tax_display": None, "pdf": {"page_size": "auto"}, "template": None,
                      "template_version": None},
        "shipping_cost": None, "shipping_details": None, "starting_balance": 0, "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "subscription": None, "subtotal": amount, "subtotal_excluding_tax": amount, "test_clock": None,
        "total": amount, "total_discount_amounts": [], "total_excluding_tax": amount, "webhooks_delivered_at": None,
        "automatically_finalizes_at": created + 3600, "total_pretax_credit_amounts": [], "total_taxes": [],
        "amount_overpaid": 0, "parent": None, "customer_account": None,
    }


def payout(poid: str, created: int, amount: int, currency: str, arrival_date: int, destination: str,
           balance_transaction: str) -> dict[str, Any]:
    """An automatic payout in `pending`."""
    return {
        "id": poid, "object": "payout", "amount": amount, "application_fee": None, "application_fee_amount": None,
        "arrival_date": arrival_date, "automatic": True, "balance_transaction": balance_transaction,
        "created": created, "currency": currency, "description": "STRIPE PAYOUT", "destination": destination,
        "failure_balance_transaction": None, "failure_code": None, "failure_message": None, "livemode": False,
        "metadata": {}, "method": "standard", "original_payout": None, "reconciliation_status": "not_applicable",
        "reversed_by": None, "source_type": "card", "statement_descriptor": None, "status": "pending", "type": "bank_account",
        "trace_id": {"status": "pending", "value": None}, "payout_method": None,
    }


def balance_transaction(txnid: str, created: int, available_on: int, amount: int, fee: int, currency: str,
                        description: str | None, exchange_rate: float | None, fee_description: str,
                        reporting_category: str, source: str, txn_type: str) -> dict[str, Any]:
    """A balance transaction; `net = amount - fee`, one `stripe_fee` row in `fee_details` when the fee is not zero."""
    details = [] if fee == 0 else [{"amount": fee, "application": None, "currency": currency,
                                    "description": fee_description, "type": "stripe_fee"}]
    return {
        "id": txnid, "object": "balance_transaction", "amount": amount, "available_on": available_on,
        "created": created, "currency": currency, "description": description, "exchange_rate": exchange_rate,
        "fee": fee, "fee_details": details, "net": amount - fee, "reporting_category": reporting_category,
        "source": source, "status": "pending", "type": txn_type, "balance_type": "payments",
    }


def invoice_payment(ipid: str, created: int, inv: dict[str, Any], pi: dict[str, Any], paid_at: int) -> dict[str, Any]:
    """A paid invoice payment: the link between `inv` and payment intent `pi` from basil on.

    Keys as stripe-mock's `fixtures3.json` example; stripe-python `_invoice_payment.py`: `is_default` "Stripe
    automatically creates a default InvoicePayment when the invoice is finalized"; `payment.charge` "is only surfaced
    if the charge object is not associated with a payment intent", so a PI-backed payment names the PI only;
    `status` "one of `open`, `paid`, or `canceled`".
    """
    return {
        "id": ipid, "object": "invoice_payment", "amount_paid": pi["amount_received"],
        "amount_requested": inv["amount_due"], "created": created, "currency": inv["currency"], "invoice": inv["id"],
        "is_default": True, "livemode": False, "payment": {"payment_intent": pi["id"], "type": "payment_intent"},
        "status": "paid", "status_transitions": {"canceled_at": None, "paid_at": paid_at},
    }
