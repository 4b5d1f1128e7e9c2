"""dispute -> Stripe_Dispute__c, child of its charge."""

from __future__ import annotations
from typing import Any


from core_helpers import CFG, Payload, map_payload, one
from core.mapping import map_object


def test_dispute_won_and_evidence_due(payloads: list[Payload]) -> None:
    p = one(payloads, "stripe-openapi/objects/dispute.json")
    rec = map_object("dispute", dict(p.obj, status="won"), p.meta("dispute"), CFG)[0]
    assert rec["fields"]["Status__c"] == "Won"
    assert rec["parents"] == [{"relationship": "Payment__r", "sobject": "Stripe_Payment__c",
                               "external_id_field": "Stripe_Charge_Id__c", "external_id": p.obj["charge"]}]
    q = one(payloads, "stripe-openapi/objects/dispute.json")
    fields = map_payload(q, "dispute")[0]["fields"]
    assert fields["Status__c"] == "Warning Needs Response"
    assert fields["Evidence_Due_By__c"] == "2024-08-14T23:59:59.000Z"   # due_by 1723679999


# Issue 19 (2): a won dispute does not leave the payment Disputed ----------------------------------------------

def _versions_of(upserts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(Status__c, Status_Version__c) of the Stripe_Payment__c writes among `upserts`."""
    return [(u["fields"]["Status__c"], u["fields"]["Status_Version__c"]) for u in upserts
            if u["sobject"] == "Stripe_Payment__c" and "Status__c" in u["fields"]]


def _newest(writes: list[tuple[str, str]]) -> str:
    """The status the documented rule keeps (docs/status-mapping.md, "Dispute outcome"): the write with the
    newest `phase/created:rank` version, compared as (phase, created, rank) — restated here, not imported."""
    def key(write: tuple[str, str]) -> tuple[int, int, tuple[int, ...]]:
        phase, _, rest = write[1].partition("/")
        created, _, rank = rest.partition(":")
        return int(phase), int(created), tuple(int(r) for r in rank.split(".") if r)
    return max(writes, key=key)[0]


def _story(payloads: list[Payload], outcome: str) -> dict[str, list[tuple[str, str]]]:
    """A real succeeded charge, the same charge once disputed (Stripe sets `disputed`), its real dispute opened and
    then closed with `outcome`: each snapshot's payment status writes."""
    charge = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    dispute = one(payloads, "stripe-sync-engine/charge_dispute_funds_reinstated.json", "dispute")
    ch = dict(charge.obj, id=dispute.obj["charge"], disputed=False)
    return {
        "charge": _versions_of(map_object("charge", ch, charge.meta("charge"), CFG)),
        "charge disputed": _versions_of(map_object("charge", dict(ch, disputed=True), charge.meta("charge"), CFG)),
        "dispute open": _versions_of(map_object("dispute", dict(dispute.obj, status="needs_response"),
                                                dispute.meta("dispute"), CFG)),
        "dispute closed": _versions_of(map_object("dispute", dict(dispute.obj, status=outcome),
                                                  dispute.meta("dispute"), CFG)),
    }


def test_a_won_dispute_gives_the_payment_the_charge_s_own_status(payloads: list[Payload], check: Any) -> None:
    for outcome in ("won", "warning_closed", "prevented"):
        story = _story(payloads, outcome)
        assert story["charge"][0][0] == "Succeeded" and story["charge disputed"][0][0] == "Disputed"
        # an open dispute says Disputed itself, at the charge's disputed phase (a real account may send no
        # charge.updated with disputed=true: Stripe documents it for description/metadata and async capture only)
        assert [status for status, _ in story["dispute open"]] == ["Disputed"]
        assert story["dispute open"][0][1].startswith("1/") and story["charge disputed"][0][1].startswith("1/")
        assert [status for status, _ in story["dispute closed"]] == ["Succeeded"]  # the charge without `disputed`
        every = [w for writes in story.values() for w in writes]
        assert _newest(every) == "Succeeded", outcome
    dispute = one(payloads, "stripe-sync-engine/charge_dispute_funds_reinstated.json", "dispute")
    upserts = map_object("dispute", dict(dispute.obj, status="won"), dispute.meta("dispute"), CFG)
    check(upserts)
    payment = [u for u in upserts if u["sobject"] == "Stripe_Payment__c"]
    assert [(u["external_id_field"], u["external_id"]) for u in payment] == [("Stripe_Charge_Id__c", dispute.obj["charge"])]


def test_a_lost_dispute_stays_disputed(payloads: list[Payload]) -> None:
    for outcome in ("lost", "appeal_needs_response", "appeal_under_review"):
        story = _story(payloads, outcome)
        assert [status for status, _ in story["dispute closed"]] == ["Disputed"]
        assert _newest([w for writes in story.values() for w in writes]) == "Disputed"
        # without any disputed charge snapshot (no charge.updated), the dispute alone outranks the old charge state
        assert _newest([*story["charge"], *story["dispute open"]]) == "Disputed"
        assert _newest([*story["charge"], *story["dispute closed"]]) == "Disputed"


def test_no_charge_snapshot_outranks_the_outcome(payloads: list[Payload]) -> None:
    """The crash-replay case: the pre-dispute charge (disputed=false, succeeded) re-emitted after the outcome, or a
    disputed charge snapshot of a later second (a re-fetch, a backfill listing), never wins over the outcome."""
    story = _story(payloads, "won")
    charge = one(payloads, "stripe-ruby-mock/charge.succeeded.json")
    later = dict(charge.obj, disputed=True, created=charge.obj["created"] + 10**8, amount_refunded=1)
    replayed = story["charge"] + _versions_of(map_object("charge", later, charge.meta("charge"), CFG))
    for write in replayed:
        assert _newest([write, *story["dispute closed"]]) == "Succeeded"
        assert _newest([*story["dispute closed"], write]) == "Succeeded"
