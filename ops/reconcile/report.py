"""The reconciliation report: drift counts, the drifts themselves, and per-payout totals in each currency."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from paysync.money import to_decimal

from ops.reconcile.compare import Drift, normalize

Key = tuple[str, str]


def payout_totals(payouts: list[dict[str, Any]], actual: dict[Key, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency: Stripe's payout count and amount vs Salesforce's, and how many are Reconciled there."""
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "stripe_payouts": 0, "stripe_amount": Decimal(0), "salesforce_payouts": 0, "salesforce_amount": Decimal(0),
        "salesforce_net": Decimal(0), "reconciled": 0, "discrepancy": 0, "pending": 0, "manual": 0,
        "stripe_manual": 0})
    for po in payouts:
        if po.get("currency") is None or po.get("amount") is None:
            continue
        row = rows[po["currency"].upper()]
        row["stripe_payouts"] += 1
        row["stripe_manual"] += po.get("automatic") is False
        row["stripe_amount"] += to_decimal(int(po["amount"]), po["currency"])
    for (sobject, _), rec in actual.items():
        if sobject != "Stripe_Payout__c" or not rec.get("Currency__c"):
            continue
        row = rows[str(rec["Currency__c"]).upper()]
        row["salesforce_payouts"] += 1
        row["salesforce_amount"] += normalize(rec.get("Amount__c")) or Decimal(0)
        row["salesforce_net"] += normalize(rec.get("Net__c")) or Decimal(0)
        status = str(rec.get("Reconciliation_Status__c") or "Pending").lower()
        bucket = "manual" if status.startswith("not applicable") else status
        row[bucket if bucket in ("reconciled", "discrepancy", "manual") else "pending"] += 1
    return [{"currency": cur, **{k: (format(v, "f") if isinstance(v, Decimal) else v) for k, v in row.items()}}
            for cur, row in sorted(rows.items())]


def summary(drifts: list[Drift], expected_count: int, actual_count: int, refused: int = 0) -> dict[str, Any]:
    """Counts by kind and by object of the unexplained drifts; `refused`: records Salesforce refused and paysync
    recorded. `clean`: nothing differs; `explained`: every difference is a recorded refusal."""
    by_kind = Counter(d.kind for d in drifts)
    by_object: dict[str, Counter[str]] = defaultdict(Counter)
    for d in drifts:
        by_object[d.sobject][d.kind] += 1
    return {"expected_records": expected_count, "salesforce_records": actual_count,
            "drifts": len(drifts), "by_kind": dict(by_kind),
            "by_object": {k: dict(v) for k, v in sorted(by_object.items())},
            "refused": refused, "explained": not drifts, "clean": not drifts and not refused}


def render_text(report: dict[str, Any], limit: int = 50) -> str:
    """The human table."""
    s = report["summary"]
    lines = [f"Reconciliation: {s['expected_records']} records expected from Stripe, "
             f"{s['salesforce_records']} read from Salesforce — "
             + _verdict(s)]
    if s["by_object"]:
        lines.append("")
        lines.append(f"{'object':32} {'missing':>8} {'extra':>8} {'stale':>8} {'mismatch':>9}")
        for obj, kinds in s["by_object"].items():
            lines.append(f"{obj:32} {kinds.get('missing', 0):>8} {kinds.get('extra', 0):>8} "
                         f"{kinds.get('stale', 0):>8} {kinds.get('mismatch', 0):>9}")
    lines.extend(_refusal_lines(report.get("refused") or [], limit))
    drifts = report["drifts"]
    if drifts:
        lines.append("")
        for d in drifts[:limit]:
            detail = f" {d['field']}: expected {d['expected']!s}, Salesforce has {d['actual']!s}" if d["field"] else ""
            lines.append(f"  {d['kind']:8} {d['sobject']} {d['external_id']}{detail}")
        if len(drifts) > limit:
            lines.append(f"  … and {len(drifts) - limit} more (use --json for all)")
    lines.append("")
    lines.append(f"{'payouts':8} {'Stripe n':>9} {'Stripe amount':>16} {'SF n':>6} {'SF amount':>16} {'SF net':>16} "
                 f"{'reconciled':>10} {'discrep.':>8} {'pending':>8} {'manual':>7}")
    for row in report["payout_totals"]:
        lines.append(f"{row['currency']:8} {row['stripe_payouts']:>9} {row['stripe_amount']:>16} "
                     f"{row['salesforce_payouts']:>6} {row['salesforce_amount']:>16} {row['salesforce_net']:>16} "
                     f"{row['reconciled']:>10} {row['discrepancy']:>8} {row['pending']:>8} {row['manual']:>7}")
    return "\n".join(lines)


def _verdict(s: dict[str, Any]) -> str:
    if s["clean"]:
        return "CLEAN: Salesforce matches Stripe"
    refused = f"{s.get('refused', 0)} record(s) refused by Salesforce, each recorded in Stripe_Sync_Error__c"
    if s.get("explained"):
        return f"REFUSED: {refused}; nothing else differs"
    return f"DRIFT: {s['drifts']} unexplained difference(s)" + (f"; {refused}" if s.get("refused") else "")


def _refusal_lines(refused: list[dict[str, Any]], limit: int) -> list[str]:
    """The refused records: object, external id, Salesforce's error codes and first message."""
    if not refused:
        return []
    lines = ["", "refused by Salesforce (recorded in Stripe_Sync_Error__c):"]
    for r in refused[:limit]:
        message = (r.get("message") or "").replace("\n", " ")[:100]
        lines.append(f"  {r['sobject']} {r['external_id']}: {', '.join(r['codes'])} {message}")
    if len(refused) > limit:
        lines.append(f"  … and {len(refused) - limit} more (use --json for all)")
    return lines
