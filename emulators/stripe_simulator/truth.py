"""Truth export: what a reconciliation compares Salesforce against, as JSON lines.

Lines, in order:
- `{"kind":"object","type":T,"account":A,"object":{…}}` — the final state of every object, balance
  transactions included (`account` is "" for the platform, else the connected account id);
- `{"kind":"payout","id":…,"account":…,"currency":…,"amount":…,"status":…,"balance_transaction":…,
  "members":[{"id","type","net"}],"sum_of_nets":…}` — each payout's member transactions (its own `type=payout`
  transaction excluded), whose nets sum to the amount;
- `{"kind":"unpaid","account":…,"currency":…,"net":…,"balance_transactions":[ids]}` — balance not paid out.
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
    payouts: dict[str, dict[str, Any]] = {}
    for object_type, account, body in store.iter_objects():
        if object_type == "payout":
            payouts[json.loads(body)["id"]] = json.loads(body)
        yield f'{{"kind":"object","type":"{object_type}","account":{dumps(account)},"object":{body}}}'
    for account, body in store.iter_txns():
        yield f'{{"kind":"object","type":"balance_transaction","account":{dumps(account)},"object":{body}}}'
    for payout_id, rows in groupby(store.iter_payout_members(), key=lambda r: r[0]):
        members = list(rows)
        po = payouts.get(payout_id, {})
        listed = [{"id": m[2], "type": m[3], "net": m[4]} for m in members if m[3] != "payout"]
        own = next((m[2] for m in members if m[3] == "payout"), None)
        yield dumps({"kind": "payout", "id": payout_id, "account": members[0][1], "currency": po.get("currency"),
                     "amount": po.get("amount"), "status": po.get("status"), "balance_transaction": own,
                     "members": listed, "sum_of_nets": sum(m["net"] for m in listed)})
    for (account, currency), unpaid_rows in groupby(store.iter_unpaid(), key=lambda r: (r[0], r[1])):
        unpaid = list(unpaid_rows)
        yield dumps({"kind": "unpaid", "account": account, "currency": currency, "net": sum(r[3] for r in unpaid),
                     "balance_transactions": [r[2] for r in unpaid]})
