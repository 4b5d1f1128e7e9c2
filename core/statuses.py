"""What the status tables of every type share: the payment and reconciliation picklist values, and rank helpers.

Each type's own tables (Stripe status -> picklist value, Stripe status -> lifecycle rank) live in its module
in `core.types`; `docs/status-mapping.md` documents them. Picklist values must be exactly those of the
restricted picklists in docs/data-model.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Payment statuses (Stripe_Payment__c.Status__c, Opportunity/Order.Stripe_Payment_Status__c).
PENDING = "Pending"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
PARTIALLY_REFUNDED = "Partially Refunded"
REFUNDED = "Refunded"
DISPUTED = "Disputed"
CANCELED = "Canceled"
PAYMENT_STATUSES = frozenset({PENDING, SUCCEEDED, FAILED, PARTIALLY_REFUNDED, REFUNDED, DISPUTED, CANCELED})

RECONCILIATION_PENDING = "Pending"
RECONCILED = "Reconciled"
RECONCILIATION_DISCREPANCY = "Discrepancy"
# A manual (or instant) payout: Stripe cannot tell which balance transactions it includes (docs: Payout
# reconciliation), so there is no member list to add up; never a Discrepancy.
RECONCILIATION_NOT_APPLICABLE_MANUAL = "Not Applicable (manual payout)"

# Lifecycle ranks: a higher rank is later in the object's life. Terminal states rank highest;
# states that can follow a "terminal" one (a refund or payout failing after success, an
# uncollectible invoice being paid) rank above it. Unknown statuses rank UNKNOWN_RANK.
UNKNOWN_RANK = -1


def status_rank(table: Mapping[str, int], obj: Mapping[str, Any]) -> int:
    """The rank of `obj["status"]` in `table`; UNKNOWN_RANK when absent or unknown."""
    return table.get(str(obj.get("status")), UNKNOWN_RANK)


def int_or_zero(value: Any) -> int:
    """An integer field for a rank: its value, or 0 when absent or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def flag(value: Any) -> int:
    """A boolean field for a rank: 1 only when it is exactly True."""
    return 1 if value is True else 0
