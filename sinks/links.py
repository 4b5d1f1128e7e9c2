"""Lookups by raw Salesforce id (`Opportunity__c` / `Order__c` taken from Stripe metadata) that Salesforce refuses.

Salesforce checks such an id: a deleted record, one of another object, one the integration user cannot see
(private sharing) or a field the org lacks (Orders disabled: no `Order__c`) fails the whole record. The payment
must not be lost for a bad link, so the record is written again without the refused link fields and the refusal
is reported (dead letter with origin + `Stripe_Sync_Error__c`) by the sink.
"""

from __future__ import annotations

from paysync.outcomes import Outcome
from sinks.errors import LINK_REFUSALS, Decision
from sinks.records import FieldValue, PendingRecord

LINK_FIELDS = ("Opportunity__c", "Order__c")


def refused_links(r: PendingRecord, decision: Decision | None, message: str) -> dict[str, FieldValue]:
    """The link fields of `r` to drop after `decision` (empty: not a refused link)."""
    if decision is None or decision.outcome is not Outcome.DEAD_LETTER or decision.code not in LINK_REFUSALS:
        return {}
    if decision.code == "INVALID_FIELD":  # only when it is about a link field (an org without that field)
        # even a null link is refused where the org lacks the field (Orders disabled: every invoice and payment
        # sends `Order__c`), so it is dropped too; dropping a null loses nothing and is not reported
        return {f: r.fields[f] for f in LINK_FIELDS if f in r.fields and f in message}
    present = {f: r.fields[f] for f in LINK_FIELDS if r.fields.get(f)}
    named = {f: v for f, v in present.items() if f in message}
    return named or present


def drop_links(r: PendingRecord, links: dict[str, FieldValue]) -> None:
    """Remove the refused link fields from `r` (the rest of the record is written as it was)."""
    for name in links:
        r.fields.pop(name, None)


def refusal_message(links: dict[str, FieldValue], message: str) -> str:
    named = ", ".join(f"{k}={v}" for k, v in links.items())
    return f"link refused ({named}): {message}; the record was written without it"
