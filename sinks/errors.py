"""The one table that decides what every Salesforce failure means for the sink.

Two entry points, both pure:
- `classify_call(status, error_code, message)`: a whole HTTP call failed (status ≥ 300, timeout, …);
- `classify_record(status_code, message)`: one record of a Collections or Bulk result failed.

Each returns a `Decision`: an `Outcome` (RETRY, REAUTH, PAUSE, DEAD_LETTER), the code counted in
metrics and written to dead letters, and `missing_parent` when a relationship's external id did
not resolve (the child waits for its parent, then for a stub parent, before it is dead-lettered).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from paysync.outcomes import Outcome


@dataclass(frozen=True)
class Decision:
    """What to do, and the error code to report."""

    outcome: Outcome
    code: str
    missing_parent: bool = False
    retry_limit: int | None = None  # RETRY at most this many writes of the record, then DEAD_LETTER


# "Foreign key external ID: cus_1 not found for field Stripe_Customer_Id__c in entity Account"
MISSING_PARENT_RE = re.compile(
    r"foreign key external id:?\s*(?P<id>.*?)\s+not found for field\s+(?P<field>\w+)\s+in entity\s+(?P<entity>\w+)",
    re.IGNORECASE,
)

# How many writes of one record a race-like code gets before the record is dead-lettered.
RACE_RETRIES = 3

# Codes that refuse a lookup by raw Salesforce id (`Opportunity__c` / `Order__c` from Stripe metadata): the
# record is written again without the refused link (`sinks.links`). INVALID_FIELD counts only when it names a
# link field (an org without Orders has no `Order__c`); INSUFFICIENT_ACCESS_* when sharing hides the target.
LINK_REFUSALS = frozenset({
    "INVALID_CROSS_REFERENCE_KEY", "FIELD_INTEGRITY_EXCEPTION", "MALFORMED_ID", "INVALID_ID_FIELD", "INVALID_FIELD",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY", "INSUFFICIENT_ACCESS_OR_READONLY", "ENTITY_IS_DELETED",
})

# (errorCode/statusCode, message pattern or None, outcome), first match wins.
_TABLE: tuple[tuple[str, re.Pattern[str] | None, Outcome], ...] = (
    ("INVALID_SESSION_ID", None, Outcome.REAUTH),
    ("REQUEST_LIMIT_EXCEEDED", re.compile(r"ConcurrentPerOrgLongTxn|concurrent", re.I), Outcome.RETRY),
    ("REQUEST_LIMIT_EXCEEDED", None, Outcome.PAUSE),  # TotalRequests: the daily budget
    ("API_CURRENTLY_DISABLED", None, Outcome.PAUSE),
    # A child insert or update locks its parent too, so UNABLE_TO_LOCK_ROW hits children as well; a trigger or
    # flow that met the lock reports it wrapped ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY: …UNABLE_TO_LOCK_ROW…").
    ("UNABLE_TO_LOCK_ROW", None, Outcome.RETRY),
    ("CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", re.compile(r"UNABLE_TO_LOCK_ROW|unable to obtain exclusive access",
                                                        re.I), Outcome.RETRY),
    ("SERVER_UNAVAILABLE", None, Outcome.RETRY),
    ("SERVICE_UNAVAILABLE", None, Outcome.RETRY),
    ("TIMEOUT", None, Outcome.RETRY),
    ("CONNECTION_ERROR", None, Outcome.RETRY),
    ("QUERY_TIMEOUT", None, Outcome.RETRY),
    ("ALL_OR_NONE_OPERATION_ROLLED_BACK", None, Outcome.RETRY),
    ("UNKNOWN_EXCEPTION", None, Outcome.RETRY),  # Salesforce's own transient internal error
    # Everything below is a property of the record: retrying cannot help.
    ("INVALID_FIELD", None, Outcome.DEAD_LETTER),
    ("STRING_TOO_LONG", None, Outcome.DEAD_LETTER),
    ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", None, Outcome.DEAD_LETTER),
    ("REQUIRED_FIELD_MISSING", None, Outcome.DEAD_LETTER),
    ("FIELD_CUSTOM_VALIDATION_EXCEPTION", None, Outcome.DEAD_LETTER),
    # Two writers inserting the same new external id at once: the loser gets DUPLICATE_VALUE (no global lock on
    # upsert); written again it finds the winner's record and updates it. Retried RACE_RETRIES times, then dead.
    ("DUPLICATE_VALUE", None, Outcome.RETRY),
    ("DUPLICATE_EXTERNAL_ID", None, Outcome.DEAD_LETTER),
    ("INVALID_TYPE", None, Outcome.DEAD_LETTER),
    ("INVALID_CROSS_REFERENCE_KEY", None, Outcome.DEAD_LETTER),
    ("MALFORMED_ID", None, Outcome.DEAD_LETTER),
    ("NOT_FOUND", None, Outcome.DEAD_LETTER),
    ("JSON_PARSER_ERROR", None, Outcome.DEAD_LETTER),
)

_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _lookup(code: str, message: str) -> Outcome | None:
    for table_code, pattern, outcome in _TABLE:
        if code == table_code and (pattern is None or pattern.search(message)):
            return outcome
    return None


def _decision(outcome: Outcome, code: str) -> Decision:
    return Decision(outcome, code, retry_limit=RACE_RETRIES if code == "DUPLICATE_VALUE" else None)


def classify_record(status_code: str, message: str) -> Decision:
    """The decision for one failed record (Collections `statusCode` or Bulk `sf__Error` code)."""
    code = (status_code or "UNKNOWN").upper()
    if MISSING_PARENT_RE.search(message or ""):
        return Decision(Outcome.RETRY, "MISSING_PARENT", missing_parent=True)
    outcome = _lookup(code, message or "")
    return _decision(outcome or Outcome.DEAD_LETTER, code)


def error_fields(body: Any) -> tuple[str | None, str]:
    """(errorCode, message) of a Salesforce error body, whatever its shape: `[{"errorCode","message"}]`, a
    SaveResult `{"errors": [{"statusCode","message"}]}`, or an OAuth `{"error","error_description"}`."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            body = errors[0]
        code = body.get("errorCode") or body.get("statusCode") or body.get("error")
        message = body.get("message") or body.get("error_description") or ""
        return (str(code) if code else None), str(message)
    return None, str(body or "")[:500]


def classify_call(status: int | None, error_code: str | None, message: str = "") -> Decision:
    """The decision for a failed HTTP call; `status` None means no response (timeout, connection)."""
    if status is None:
        return Decision(Outcome.RETRY, (error_code or "CONNECTION_ERROR").upper())
    code = (error_code or f"HTTP_{status}").upper()
    if MISSING_PARENT_RE.search(message or ""):
        return Decision(Outcome.RETRY, "MISSING_PARENT", missing_parent=True)
    outcome = _lookup(code, message or "")
    if outcome is not None:
        return _decision(outcome, code)
    if status == 401:
        return Decision(Outcome.REAUTH, code)
    if status == 403:
        return Decision(Outcome.PAUSE, code)  # refused without a known code: stop and re-read the budget
    if status in _RETRY_STATUSES or status >= 500:
        return Decision(Outcome.RETRY, code)
    return Decision(Outcome.DEAD_LETTER, code)


def parse_bulk_error(sf_error: str) -> tuple[str, str]:
    """`CODE:message:fields --` (a Bulk `sf__Error`) → (code, message)."""
    text = (sf_error or "").strip()
    code, sep, rest = text.partition(":")
    if not sep:
        return "UNKNOWN", text
    rest = rest.rstrip()
    if rest.endswith("--"):
        rest = rest[:-2].rstrip()
        # drop the trailing ":fields" part (field names have no spaces)
        head, colon, tail = rest.rpartition(":")
        if colon and " " not in tail:
            rest = head
    return code.strip().upper(), rest.strip()
