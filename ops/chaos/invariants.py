"""The invariant after a chaos run: Salesforce equals Stripe — no missing, no duplicate, no stale record, every
automatic payout reconciled and every manual one in its own state — and every poison record in the dead-letter topic with its origin (and no other dead letter).
"""

from __future__ import annotations

from typing import Any


from ops.chaos.poison import PoisonRecord, missing_poison, read_dead_letters, unexpected_dead_letters
from ops.pipeline import LocalPipeline
from ops.reconcile.engine import reconcile
from ops.reconcile.salesforce_side import EXTERNAL_ID_FIELDS, SalesforceReader


def salesforce_reader(p: LocalPipeline) -> SalesforceReader:
    """A SOQL reader on the emulator that logs in again when its session expires (session-expiry runs)."""
    return p.salesforce_reader()


def object_counts(reader: SalesforceReader) -> dict[str, tuple[int, int]]:
    """Per synced object: (rows in the org, distinct non-empty external ids). Equal unless duplicated or unkeyed."""
    counts: dict[str, tuple[int, int]] = {}
    for sobject, ext in EXTERNAL_ID_FIELDS.items():
        rows = [r.get(ext) for r in reader.query(f"SELECT Id, {ext} FROM {sobject}")]
        counts[sobject] = (len(rows), len({r for r in rows if r}))
    return counts


def check(p: LocalPipeline, poison: list[PoisonRecord]) -> dict[str, Any]:
    """Every invariant; `violations` is empty when the run passed."""
    assert p.stripe is not None
    reader = salesforce_reader(p)
    report = reconcile(p.stripe.truth(), reader, _mapping_config())
    summary = report["summary"]
    violations: list[str] = []
    if not summary["clean"]:
        violations.append(f"reconcile: {summary['drifts']} drift(s) {summary['by_object']}: "
                          + "; ".join(f"{d['kind']} {d['sobject']} {d['external_id']} {d['field'] or ''}".strip()
                                      for d in report["drifts"][:5]))
    totals = report["payout_totals"]
    stripe_payouts = sum(int(r["stripe_payouts"]) for r in totals)
    sf_payouts = sum(int(r["salesforce_payouts"]) for r in totals)
    reconciled = sum(int(r["reconciled"]) for r in totals)
    manual = sum(int(r["manual"]) for r in totals)
    stripe_manual = sum(int(r["stripe_manual"]) for r in totals)
    # every automatic payout Reconciled, every manual one in its own state (Stripe cannot list its members)
    if not (stripe_payouts == sf_payouts == reconciled + manual and manual == stripe_manual):
        violations.append(f"payouts: Stripe {stripe_payouts} ({stripe_manual} manual), Salesforce {sf_payouts}, "
                          f"Reconciled {reconciled}, manual state {manual}")
    counts = object_counts(reader)
    dupes = {k: v for k, v in counts.items() if v[0] != v[1]}
    if dupes:
        violations.append(f"duplicates (rows, distinct external ids): {dupes}")
    count = sum(rows for rows, _ in counts.values())
    if count != summary["expected_records"]:
        violations.append(f"record count: Salesforce holds {count}, Stripe implies {summary['expected_records']}")
    dead = read_dead_letters(p.bootstrap, p.prefix)
    lost_poison = missing_poison(poison, dead)
    if lost_poison:
        violations.append("poison not in the dead-letter topic: "
                          + ", ".join(f"{x.kind}@{x.topic}/{x.partition}/{x.offset}" for x in lost_poison))
    other = unexpected_dead_letters(poison, dead)
    if other:
        violations.append(f"{len(other)} unexpected dead letter(s): "
                          + "; ".join(f"{d['stage']} {d['error_code']} {d['topic']}/{d['partition']}/{d['offset']}"
                                      for d in other[:5]))
    return {"violations": violations, "expected_records": summary["expected_records"], "salesforce_records": count,
            "payouts": sf_payouts, "payouts_reconciled": reconciled, "payouts_manual": manual,
            "dead_letters": len(dead),
            # at-least-once: a component killed after dead-lettering, before committing, dead-letters again
            "dead_letter_origins": len({(d["topic"], int(d["partition"]), int(d["offset"])) for d in dead}),
            "poison_in_dlq": len(poison) - len(lost_poison)}


def _mapping_config() -> Any:
    from core.config import mapping_config

    return mapping_config()
