"""What Salesforce must show for a Stripe account, restated from Stripe's documentation and docs/status-mapping.md
(issue 19: "check Salesforce values against expectations computed in the tests from Stripe's rules ... not by
calling `streams.mapping`"). Deliberately independent: nothing here imports `core`, `streams` or `ops.reconcile`,
so a mistake in the mapping (which `reconcile` shares by design) shows up as a difference.

`expected(truth)` turns the simulator's final truth (`/_sim/truth`) into `{sobject: {external id: {field: value}}}`;
values are exact `Decimal`s for money, strings for picklists and text, `None` for "empty".
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

# Stripe, "Supported currencies" (stripe.com/docs/currencies), "Minor units in API amounts": "All API requests
# expect amount values in the currency's minor unit"; "Zero-decimal currencies": BIF CLP DJF GNF JPY KMF KRW MGA
# PYG RWF UGX VND VUV XAF XOF XPF ("For example, to charge ¥500, provide an amount value of 500");
# "Three-decimal currencies": BHD JOD KWD OMR TND. Every other currency has two decimals.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

# docs/status-mapping.md, "Normalization tables" (the picklist values of docs/data-model.md).
REFUND_STATUS = {"pending": "Pending", "requires_action": "Requires Action", "succeeded": "Succeeded",
                 "failed": "Failed", "canceled": "Canceled"}
DISPUTE_STATUS = {"warning_needs_response": "Warning Needs Response", "warning_under_review": "Warning Under Review",
                  "warning_closed": "Warning Closed", "needs_response": "Needs Response",
                  "under_review": "Under Review",
                  "won": "Won", "lost": "Lost", "prevented": "Prevented",
                  "appeal_needs_response": "Appeal Needs Response", "appeal_under_review": "Appeal Under Review"}
INVOICE_STATUS = {"draft": "Draft", "open": "Open", "paid": "Paid", "void": "Void", "uncollectible": "Uncollectible"}
PAYOUT_STATUS = {"pending": "Pending", "in_transit": "In Transit", "paid": "Paid", "failed": "Failed",
                 "canceled": "Canceled"}
MANUAL_PAYOUT = "Not Applicable (manual payout)"
# docs/status-mapping.md "Dispute outcome": closed in the merchant's favour (an inquiry closed, a chargeback won or
# prevented); Stripe keeps `charge.disputed=true` after them.
FAVOURABLE = frozenset({"won", "warning_closed", "prevented"})


def major(minor: int, currency: str) -> Decimal:
    """Minor units -> the decimal amount Salesforce shows (JPY 0, KWD/BHD 3, others 2 decimals)."""
    code = currency.lower()
    places = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(minor).scaleb(-places)


def charge_split(ch: dict[str, Any]) -> tuple[int, int, int]:
    """(captured, released, really refunded): a partial capture of 60 of 100 reads `amount_captured=60`,
    `amount_refunded=40`, `refunded=false` (woocommerce-gateway-stripe#1073); the released 40 is no refund, and a
    later refund adds to `amount_refunded`. An uncaptured charge whose authorization was released (`refunded`)
    released all of it."""
    amount, refunded_total = int(ch["amount"]), int(ch.get("amount_refunded") or 0)
    if not ch.get("captured"):
        return 0, (refunded_total if ch.get("refunded") else 0), 0
    captured = int(ch["amount_captured"])
    released = amount - captured
    return captured, released, refunded_total - released


def payment_status(ch: dict[str, Any], dispute_status: str | None) -> str:
    """docs/status-mapping.md, payment status: failed; disputed (the charge keeps `disputed=true`); released
    authorization -> Canceled; really refunded >= captured -> Refunded; > 0 -> Partially Refunded; pending;
    captured -> Succeeded; uncaptured -> Pending. "Dispute outcome": a dispute closed in the merchant's favour
    (`FAVOURABLE`) writes the payment status back to what the charge says without `disputed` (issue 19: "a won
    dispute does not leave the payment Disputed"); open, in appeal or lost: Disputed."""
    if ch["status"] == "failed":
        return "Failed"
    if ch.get("disputed") and dispute_status not in FAVOURABLE:
        return "Disputed"
    captured, _, refunded = charge_split(ch)
    if ch.get("refunded") and not ch.get("captured"):
        return "Canceled"
    if ch.get("captured") and refunded > 0 and refunded >= captured:
        return "Refunded"
    if refunded > 0:
        return "Partially Refunded"
    if ch["status"] == "pending":
        return "Pending"
    return "Succeeded" if ch.get("captured") else "Pending"


def _by_kind(truth: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for line in truth:
        if line["kind"] == "object":
            objects[line["type"]][line["object"]["id"]] = line["object"]
    return objects


def expected(truth: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every Salesforce record the truth implies, field by field (see the module docstring)."""
    objs = _by_kind(truth)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    txns = objs["balance_transaction"]
    out["Stripe_Payment__c"] = _payments(objs, txns)
    out["Stripe_Refund__c"] = {rid: {"Amount__c": major(r["amount"], r["currency"]),
                                     "Currency__c": r["currency"].upper(), "Status__c": REFUND_STATUS[r["status"]],
                                     "Payment__r.Stripe_Charge_Id__c": r["charge"], **_settled(txns, r)}
                               for rid, r in objs["refund"].items()}
    out["Stripe_Dispute__c"] = {did: _dispute(d) for did, d in objs["dispute"].items()}
    out["Stripe_Invoice__c"] = _invoices(truth, objs)
    out["Stripe_Payout__c"] = _payouts(truth)
    out["Stripe_Balance_Transaction__c"] = {tid: _txn(t) for tid, t in txns.items()}
    for tid, payout_id in payout_members(truth).items():
        out["Stripe_Balance_Transaction__c"][tid]["Payout__r.Stripe_Payout_Id__c"] = payout_id
    return out


def _settled(txns: dict[str, dict[str, Any]], obj: dict[str, Any]) -> dict[str, Any]:
    """Fee and net of the object's balance transaction, in the settlement currency's exponent."""
    bt = txns.get(obj.get("balance_transaction") or "")
    if bt is None:
        return {}
    return {"Fee__c": major(bt["fee"], bt["currency"]), "Net__c": major(bt["net"], bt["currency"]),
            "Balance_Transaction_Id__c": bt["id"]}


def _payments(objs: dict[str, dict[str, dict[str, Any]]], txns: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    dispute_of = {d["charge"]: d["status"] for d in objs["dispute"].values()}
    out = {}
    for cid, ch in objs["charge"].items():
        cur = ch["currency"]
        captured, released, refunded = charge_split(ch)
        out[cid] = {"Amount__c": major(ch["amount"], cur), "Amount_Captured__c": major(ch["amount_captured"], cur),
                    "Amount_Released__c": major(released, cur), "Amount_Refunded__c": major(refunded, cur),
                    "Currency__c": cur.upper(), "Status__c": payment_status(ch, dispute_of.get(cid)),
                    "Stripe_Status__c": ch["status"], "Stripe_Payment_Intent_Id__c": ch.get("payment_intent"),
                    **_settled(txns, ch)}
    return out


def _dispute(d: dict[str, Any]) -> dict[str, Any]:
    """Status from the table; the withdrawal's fee is the dispute fee, a win's `dispute_reversal` gives it back
    (Stripe "Disputes": "If you win the dispute, the disputed amount and the dispute fee are returned")."""
    cur = d["currency"]
    row: dict[str, Any] = {"Amount__c": major(d["amount"], cur), "Currency__c": cur.upper(),
                           "Status__c": DISPUTE_STATUS[d["status"]], "Payment__r.Stripe_Charge_Id__c": d["charge"]}
    for bt in d.get("balance_transactions") or []:
        if bt.get("reporting_category") == "dispute":
            row["Dispute_Fee__c"] = major(bt["fee"], bt["currency"])
        elif bt.get("reporting_category") == "dispute_reversal":
            row["Dispute_Fee_Returned__c"] = major(-bt["fee"], bt["currency"])
            row["Amount_Reinstated__c"] = major(bt["amount"], bt["currency"])
    return row


def _invoices(truth: list[dict[str, Any]], objs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for iid, inv in objs["invoice"].items():
        cur = inv["currency"]
        out[iid] = {"Status__c": INVOICE_STATUS[inv["status"]], "Currency__c": cur.upper(),
                    "Amount_Due__c": major(inv["amount_due"], cur), "Amount_Paid__c": major(inv["amount_paid"], cur),
                    "Amount_Remaining__c": major(inv["amount_remaining"], cur), "Total__c": major(inv["total"], cur)}
    for line in truth:  # docs/status-mapping.md: a deleted draft stays, with Status "Deleted"
        if line["kind"] == "deleted" and line["type"] == "invoice":
            out[line["id"]] = {"Status__c": "Deleted"}
    return out


def invoice_links(truth: list[dict[str, Any]], paid_only: bool = True) -> dict[str, str]:
    """payment intent -> invoice, from the `invoice_payment` objects (API 2025-03-31 basil: the link between an
    invoice and its payments; `invoice_payment.payment.payment_intent`); every status unless `paid_only`."""
    links = {}
    for line in truth:
        if line["kind"] == "object" and line["type"] == "invoice_payment" and (
                line["object"]["status"] == "paid" or not paid_only):
            pay = line["object"]["payment"]
            if pay.get("payment_intent"):
                links[pay["payment_intent"]] = line["object"]["invoice"]
    return links


def _payouts(truth: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Docs "Payout reconciliation": an automatic payout's transactions add up to it (Reconciled, with the members'
    nets and count); a manual one has no member list ("Stripe can't identify which transactions are included")."""
    out: dict[str, dict[str, Any]] = {}
    for line in truth:
        if line["kind"] != "payout":
            continue
        cur = line["currency"]
        row: dict[str, Any] = {"Amount__c": major(line["amount"], cur), "Currency__c": cur.upper(),
                               "Status__c": PAYOUT_STATUS[line["status"]], "Automatic__c": bool(line["automatic"])}
        if not line["automatic"]:
            row["Reconciliation_Status__c"] = MANUAL_PAYOUT
        elif line["status"] in ("paid", "failed") and line["reconciliation_status"] != "in_progress":
            members = line["members"]
            nets = sum(int(m["net"]) for m in members)
            row.update({"Reconciliation_Status__c": "Reconciled" if nets == line["amount"] else "Discrepancy",
                        "Net__c": major(nets, cur), "Transaction_Count__c": Decimal(len(members))})
        out[line["id"]] = row
    return out


def _txn(t: dict[str, Any]) -> dict[str, Any]:
    cur = t["currency"]
    return {"Amount__c": major(t["amount"], cur), "Fee__c": major(t["fee"], cur), "Net__c": major(t["net"], cur),
            "Currency__c": cur.upper(), "Status__c": t["status"], "Type__c": t["type"],
            "Reporting_Category__c": t["reporting_category"]}


def payout_members(truth: list[dict[str, Any]]) -> dict[str, str]:
    """balance transaction -> its automatic payout (members are listed only for automatic payouts)."""
    return {m["id"]: line["id"] for line in truth if line["kind"] == "payout" and line["members"]
            for m in line["members"]}
