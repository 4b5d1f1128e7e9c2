"""End to end against Stripe's rules (issue 19, "Done when" 3): the whole pipeline on the real broker, the Stripe
simulator with the account as it really is (partial captures, refunds, disputes with
appeals and won/lost outcomes, invoices paid through `invoice_payment` in new shapes and `charge.invoice` in the
Connect endpoint's 2024-06-20 shapes, deleted drafts, automatic, manual and instant payouts, reconciliation
completing after `payout.paid`), list entries late (issue 15), then every Salesforce value compared with what
`stripe_rules` derives from the simulator's final truth — an independent restatement of the rules, never the
mapping `reconcile` shares.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import stripe_rules as rules
from late_clock import late_pipeline, run_out
from simple_salesforce.api import Salesforce

from emulators.salesforce_emulator import client_session
from ops.pipeline import LocalPipeline, PipelineOptions

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Shares raised above the simulator's defaults so that a small run holds every case at least once; ~20 minutes of
# simulated traffic at 40 events per wall second, the stories' own delays as in a real account (`delay_scale` 1).
TRAFFIC: dict[str, Any] = {
    "events": 800, "rate": 40, "mean_gap": 1.5, "delay_scale": 1.0, "connected_accounts": 2,
    "manual_capture_rate": 0.4, "partial_capture_rate": 0.5, "refund_rate": 0.12, "dispute_rate": 0.12,
    "appeal_rate": 0.6, "invoice_share": 0.3, "draft_delete_rate": 0.3, "manual_payout_rate": 0.4,
    "instant_payout_share": 0.6,
}
# Late visibility on (issue 15): list entries show up 0-2 minutes after `created`, on the simulated clock of
# `late_clock` (60 simulated seconds per second once the account is quiet), pollers at their production horizon.
MAX_DELAY_S, SPEED = 120.0, 60.0
FIELDS = {
    "Stripe_Payment__c": ("Stripe_Charge_Id__c", "Invoice__r.Stripe_Invoice_Id__c"),
    "Stripe_Refund__c": ("Stripe_Refund_Id__c",),
    "Stripe_Dispute__c": ("Stripe_Dispute_Id__c",),
    "Stripe_Invoice__c": ("Stripe_Invoice_Id__c",),
    "Stripe_Payout__c": ("Stripe_Payout_Id__c",),
    "Stripe_Balance_Transaction__c": ("Stripe_Balance_Transaction_Id__c",),
}
@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPipeline, list[Any]]]:
    options = PipelineOptions(
        workdir=tmp_path_factory.mktemp("rules") / "pipeline", bootstrap=kafka_bootstrap, partitions=3, seed=23,
        simulator_knobs={"duplicate_rate": 0.05, "drop_rate": 0.03, "reorder_window": 1.0, "tie_rate": 0.1})
    with late_pipeline(options, MAX_DELAY_S, SPEED, TRAFFIC) as late:
        yield late.p, run_out(late)


def salesforce(p: LocalPipeline) -> Salesforce:
    """simple-salesforce logged in to the pipeline's emulator (client credentials), money parsed as Decimal."""
    c = p.sf.credentials
    return Salesforce(consumer_key=c["client_id"], consumer_secret=c["client_secret"], domain="paysync-emulator.my",
                      session=client_session(p.sf), parse_float=Decimal)


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_salesforce(sf: Salesforce, wanted: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """`{sobject: {external id: flat record}}` with every field `wanted` names."""
    out: dict[str, dict[str, Any]] = {}
    for sobject, (ext, *extra) in FIELDS.items():
        names = {ext, *extra} | {f for row in wanted[sobject].values() for f in row}
        rows = sf.query_all(f"SELECT {', '.join(sorted(names))} FROM {sobject}")["records"]
        out[sobject] = {r[ext]: r for r in map(_flat, rows)}
    return out


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, Decimal):
        return got is not None and Decimal(str(got)) == want
    if isinstance(want, bool):
        return bool(got) is want
    return bool(want == got)


def differences(want: dict[str, dict[str, dict[str, Any]]], have: dict[str, dict[str, Any]],
                skip: frozenset[tuple[str, str, str]] = frozenset()) -> list[str]:
    """One line per differing field (or missing record), in a stable order; `skip` (sobject, id, field) left out."""
    diffs: list[str] = []
    for sobject, rows in want.items():
        for ext_id, fields in sorted(rows.items()):
            record = have[sobject].get(ext_id)
            if record is None:
                diffs.append(f"{sobject} {ext_id}: missing")
                continue
            for field, value in fields.items():
                if (sobject, ext_id, field) not in skip and not _same(value, record.get(field)):
                    got = record.get(field)
                    diffs.append(f"{sobject} {ext_id} {field}: expected {value!r}, Salesforce has {got!r}")
    return diffs


def test_traffic_holds_every_case(run: tuple[LocalPipeline, list[Any]]) -> None:
    """The comparison below means something only if the run had every case the rules distinguish."""
    _, truth = run
    objs = {(line["type"], line["object"]["id"]): line["object"] for line in truth if line["kind"] == "object"}
    charges = [o for (t, _), o in objs.items() if t == "charge"]
    disputes = [o["status"] for (t, _), o in objs.items() if t == "dispute"]
    payouts = [line for line in truth if line["kind"] == "payout"]
    cases = {
        "partial capture": any(c["captured"] and c["amount_captured"] < c["amount"] for c in charges),
        "refund": any(t == "refund" for t, _ in objs),
        "won dispute": "won" in disputes, "lost dispute": "lost" in disputes,
        "zero-decimal JPY": any(c["currency"] == "jpy" for c in charges),
        "three-decimal KWD": any(c["currency"] == "kwd" for c in charges),
        "invoice_payment": any(t == "invoice_payment" for t, _ in objs),
        "deleted draft": any(line["kind"] == "deleted" for line in truth),
        "automatic payout": any(p["automatic"] for p in payouts),
        "manual payout": any(not p["automatic"] for p in payouts),
        "instant payout": any(p["method"] == "instant" for p in payouts),
        "connected account": any(line.get("account") for line in truth if line["kind"] == "object"),
    }
    assert all(cases.values()), f"cases missing from the traffic: {[k for k, v in cases.items() if not v]}"


def test_stripe_itself_adds_up(run: tuple[LocalPipeline, list[Any]]) -> None:
    """Stripe's invariants in the truth: an automatic payout's member nets sum to its amount; net = amount − fee."""
    _, truth = run
    for line in truth:
        if line["kind"] == "payout" and line["automatic"]:
            assert sum(m["net"] for m in line["members"]) == line["amount"], line["id"]
        if line["kind"] == "object" and line["type"] == "balance_transaction":
            bt = line["object"]
            assert bt["net"] == bt["amount"] - bt["fee"], bt["id"]


def test_salesforce_matches_stripes_rules(run: tuple[LocalPipeline, list[Any]]) -> None:
    """Every record and field the rules imply, as Salesforce shows it after the run."""
    p, truth = run
    want = rules.expected(truth)
    have = read_salesforce(salesforce(p), want)
    diffs = differences(want, have)
    assert not diffs, f"{len(diffs)} differences from Stripe's rules; the first 30:\n" + "\n".join(diffs[:30])


def test_invoices_link_their_payments(run: tuple[LocalPipeline, list[Any]]) -> None:
    """Each paid invoice reaches its payment: a `Stripe_Invoice_Payment__c` naming invoice and payment intent (new
    shapes), and a payment's own `Invoice__c` (old shapes) never names another invoice."""
    p, truth = run
    links = rules.invoice_links(truth)
    assert links, "no paid invoice_payment in the traffic"
    sf = salesforce(p)
    rows = sf.query_all("SELECT Stripe_Payment_Intent_Id__c, Invoice__r.Stripe_Invoice_Id__c "
                        "FROM Stripe_Invoice_Payment__c")["records"]
    have = {(r["Stripe_Payment_Intent_Id__c"], (r.get("Invoice__r") or {}).get("Stripe_Invoice_Id__c")) for r in rows}
    missing = sorted(set(links.items()) - have)
    assert not missing, f"{len(missing)} invoice payments missing or unlinked: {missing[:10]}"
    pays = sf.query_all("SELECT Stripe_Charge_Id__c, Stripe_Payment_Intent_Id__c, Invoice__r.Stripe_Invoice_Id__c "
                        "FROM Stripe_Payment__c WHERE Invoice__c != null")["records"]
    # a failed attempt's own payment intent is in no invoice_payment of the truth: only known links are checked
    every = rules.invoice_links(truth, paid_only=False)
    checked = [r for r in pays if r["Stripe_Payment_Intent_Id__c"] in every]
    assert checked, "no payment carries an old-shape invoice link (charge.invoice) to check"
    wrong = [(r["Stripe_Charge_Id__c"], r["Invoice__r"]["Stripe_Invoice_Id__c"]) for r in checked
             if every[r["Stripe_Payment_Intent_Id__c"]] != r["Invoice__r"]["Stripe_Invoice_Id__c"]]
    assert not wrong, f"payments linked to the wrong invoice: {wrong[:10]}"
