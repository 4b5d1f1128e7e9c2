"""Truth export: what a reconciliation compares Salesforce against, as JSON lines.

Lines, in order:
- `{"kind":"object","type":T,"account":A,"object":{…}}` — the final state of every object still existing, balance
  transactions included (`account` is "" for the platform, else the connected account id). Charges carry the
  partial-capture amounts as Stripe does: `amount` authorised, `amount_captured`, and the released remainder inside
  `amount_refunded` with `refunded` false; `invoice_payment` objects link paid invoices to their payment intents;
- `{"kind":"deleted","type":T,"account":A,"id":…}` — an object deleted in Stripe (a draft invoice:
  `invoice.deleted`), which no retrieve or list shows any more;
- `{"kind":"payout","id":…,"account":…,"currency":…,"amount":…,"status":…,"automatic":…,"method":…,
  "reconciliation_status":…,"balance_transaction":…,"members":[{"id","type","net"}] | null,"sum_of_nets":… | null}`
  — every payout. Automatic ones list their member transactions (their own `type=payout` transaction excluded),
  whose nets sum to the amount; manual ones (`automatic` false, `method` standard or instant) have `members` and
  `sum_of_nets` null, because Stripe cannot say which transactions they include;
- `{"kind":"unpaid","account":…,"currency":…,"net":…,"balance_transactions":[ids]}` — balance not paid out by any
  payout, automatic or manual.

Format change (issue 19): payout lines gained `automatic`, `method`, `reconciliation_status`, and come for manual
payouts too (members null); `deleted` lines are new; transactions taken by a manual payout are no longer `unpaid`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby
from typing import Any

from .records import dumps
from .store import Store


def truth_lines(store: Store) -> Iterator[str]:
    """The truth export, one JSON document per line (no trailing newline)."""
    payouts: dict[str, tuple[str, dict[str, Any]]] = {}
    for object_type, account, body in store.iter_objects():
        if object_type == "payout":
            po = json.loads(body)
            payouts[po["id"]] = (account, po)
        yield f'{{"kind":"object","type":"{object_type}","account":{dumps(account)},"object":{body}}}'
    for account, body in store.iter_txns():
        yield f'{{"kind":"object","type":"balance_transaction","account":{dumps(account)},"object":{body}}}'
    for object_type, account, object_id in store.iter_deleted():
        yield dumps({"kind": "deleted", "type": object_type, "account": account, "id": object_id})
    members = {payout_id: list(rows) for payout_id, rows in groupby(store.iter_payout_members(), key=lambda r: r[0])}
    for payout_id, (account, po) in payouts.items():
        yield _payout_line(payout_id, account, po, members.get(payout_id, []))
    for (account, currency), unpaid_rows in groupby(store.iter_unpaid(), key=lambda r: (r[0], r[1])):
        unpaid = list(unpaid_rows)
        yield dumps({"kind": "unpaid", "account": account, "currency": currency, "net": sum(r[3] for r in unpaid),
                     "balance_transactions": [r[2] for r in unpaid]})


def _payout_line(payout_id: str, account: str, po: dict[str, Any], rows: list[tuple[str, str, str, str, int]]) -> str:
    line: dict[str, Any] = {
        "kind": "payout", "id": payout_id, "account": account, "currency": po.get("currency"),
        "amount": po.get("amount"), "status": po.get("status"), "automatic": po.get("automatic"),
        "method": po.get("method"), "reconciliation_status": po.get("reconciliation_status"),
        "balance_transaction": po.get("balance_transaction"), "members": None, "sum_of_nets": None,
    }
    if po.get("automatic"):
        listed = [{"id": m[2], "type": m[3], "net": m[4]} for m in rows if m[3] != "payout"]
        line.update(members=listed, sum_of_nets=sum(m[4] for m in rows if m[3] != "payout"))
    return dumps(line)
