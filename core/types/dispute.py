"""dispute -> Stripe_Dispute__c by Stripe_Dispute_Id__c, child of its charge's Stripe_Payment__c.

Dispute fee (and the fee returned on a win), balance transaction and payout belong to the balance-transaction
mapping. The payment's status is its charge's (`disputed` -> Disputed) until the dispute closes in the merchant's
favour (`FAVOURABLE`): then the dispute writes it back (`payment_status`), at a phase no charge snapshot reaches;
before that (and when lost) the dispute writes Disputed itself, at the charge's disputed phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core import statuses
from core.common import (
    EventMeta, FieldValue, check_amount_object, common_fields, datetime_str, identity_fields, money,
    payment_parent, require_status, text, upper, upsert,
)
from core.config import MappingConfig
from core.spec import StripeType
from core.version import PHASE_DISPUTED, PHASE_OUTCOME, encode_payment_status_version
from paysync.keys import ref_id

DISPUTE_STATUS: Mapping[str, str] = MappingProxyType({
    "warning_needs_response": "Warning Needs Response",
    "warning_under_review": "Warning Under Review",
    "warning_closed": "Warning Closed",
    "needs_response": "Needs Response",
    "under_review": "Under Review",
    "won": "Won",
    "lost": "Lost",
    "prevented": "Prevented",
    "appeal_needs_response": "Appeal Needs Response",
    "appeal_under_review": "Appeal Under Review",
})
DISPUTE_RANK: Mapping[str, int] = MappingProxyType({
    "warning_needs_response": 0,
    "warning_under_review": 1,
    "needs_response": 2,
    "under_review": 3,
    # an appeal follows the review (no `lost` in between); its outcome, won or lost, comes after it
    "appeal_needs_response": 4,
    "appeal_under_review": 5,
    "warning_closed": 6,
    "won": 6,
    "lost": 6,
    "prevented": 6,
})

# Closed in the merchant's favour: the money stayed (won: reinstated) and the payment reads what its charge says
# without the dispute. The dispute object does not carry that charge state; a chargeback freezes it (Stripe
# refuses to refund a charged-back payment) and paysync's disputes are of captured, unrefunded charges as a rule,
# so it is Succeeded (docs/status-mapping.md "Dispute outcome" states the limits). Open, in appeal or lost: the
# dispute writes Disputed itself, at the charge's disputed phase — Stripe documents `charge.updated` only for "a
# charge description or metadata is updated, or upon an asynchronous capture" (Types of events), so a real
# account may send no charge snapshot with `disputed=true` at all; a lost dispute stays Disputed.
FAVOURABLE: frozenset[str] = frozenset({"won", "warning_closed", "prevented"})


def rank(obj: Mapping[str, Any]) -> tuple[int, ...]:
    """Status, then evidence submissions, then whether it has evidence."""
    details = obj.get("evidence_details")
    details = details if isinstance(details, dict) else {}
    return (
        statuses.status_rank(DISPUTE_RANK, obj),
        statuses.int_or_zero(details.get("submission_count")),
        statuses.flag(details.get("has_evidence")),
    )


def payment_status(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Payment__c status partial of a dispute ([] without a charge id).

    Closed in the merchant's favour (`FAVOURABLE`): Succeeded at PHASE_OUTCOME, above every charge snapshot's
    (`core.types.charge` `payment_status_version`), so no charge state — live, replayed, re-fetched or backfilled,
    older or newer — writes Disputed over the outcome again. Otherwise (open, in appeal, lost): Disputed at
    PHASE_DISPUTED, where every charge snapshot says Disputed too, so it agrees with them whatever the order, and
    outranks every pre-dispute (phase 0) charge snapshot.
    """
    charge_id = ref_id(obj.get("charge"))
    if not charge_id:
        return []
    favourable = obj.get("status") in FAVOURABLE
    fields: dict[str, FieldValue] = identity_fields(meta.account, meta.livemode, cfg)
    fields["Status__c"] = statuses.SUCCEEDED if favourable else statuses.DISPUTED
    fields["Status_Version__c"] = encode_payment_status_version(
        PHASE_OUTCOME if favourable else PHASE_DISPUTED, statuses.int_or_zero(obj.get("created")), rank(obj))
    return [upsert("Stripe_Payment__c", "Stripe_Charge_Id__c", charge_id, fields, meta.version, meta.event_id)]


def map_dispute(obj: dict[str, Any], meta: EventMeta, cfg: MappingConfig) -> list[dict[str, Any]]:
    """The Stripe_Dispute__c upsert, then the payment status it decides (`payment_status`)."""
    obj, dispute_id, currency, amount = check_amount_object("dispute", obj)
    details = obj.get("evidence_details")
    due_by = details.get("due_by") if isinstance(details, dict) else None
    fields: dict[str, FieldValue] = common_fields(meta, cfg, currency)
    fields.update({
        "Amount__c": money(amount, currency),
        "Currency__c": upper(currency),
        "Status__c": require_status(DISPUTE_STATUS, obj, "dispute"),
        "Reason__c": text(obj.get("reason"), 50),
        "Evidence_Due_By__c": datetime_str(due_by),
        "Created_At__c": datetime_str(obj.get("created")),
    })
    parents = payment_parent(obj.get("charge"))
    out = [upsert("Stripe_Dispute__c", "Stripe_Dispute_Id__c", dispute_id, fields, meta.version, meta.event_id, parents)]
    return out + payment_status(obj, meta, cfg)


SPEC = StripeType(
    name="dispute", list_path="/v1/disputes", rank=rank, mapper=map_dispute,
    sobjects=("Stripe_Dispute__c",), external_id_field="Stripe_Dispute_Id__c", write_rank=60,
    statuses=DISPUTE_STATUS, status_ranks=DISPUTE_RANK,
    terminal=frozenset({"warning_closed", "won", "lost", "prevented"}), backfill_order=2, child_of_charge=True,
)
