"""Stripe's final state as truth lines: from the simulator's export, a file, or Stripe's list endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx

from core import registry

# Stripe type -> its stripe-python v1 service (`client.v1.charges` lists `/v1/charges`).
LISTED_TYPES: Mapping[str, str] = MappingProxyType({
    spec.name: spec.list_path.removeprefix("/v1/") for spec in registry.TYPES
})


def truth_from_simulator(base_url: str, timeout: float = 300.0) -> list[dict[str, Any]]:
    """The simulator's `/_sim/truth` export."""
    resp = httpx.get(f"{base_url.rstrip('/')}/_sim/truth", timeout=timeout)
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


def truth_from_file(path: Path) -> list[dict[str, Any]]:
    """Truth lines saved to a file (JSON lines)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def truth_from_stripe(client: Any, accounts: list[str | None], since: int | None = None) -> Iterator[dict[str, Any]]:
    """Truth lines from Stripe's list endpoints (`client` is a `stripe.StripeClient`), per account.

    Every object type is listed by `created`; every payout's members come from
    `GET /v1/balance_transactions?payout=…` (its own `type=payout` transaction excluded).
    """
    created = {"gte": since} if since is not None else None
    for account in accounts:
        options = {"stripe_account": account} if account else {}
        for object_type, resource in LISTED_TYPES.items():
            params: dict[str, Any] = {"limit": 100}
            if created:
                params["created"] = created
            service = getattr(client.v1, resource)
            for obj in service.list(params=params, options=options).auto_paging_iter():
                data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
                yield {"kind": "object", "type": object_type, "account": account or "", "object": data}
                if object_type == "payout" and data.get("status") in ("paid", "failed"):
                    members = []
                    txns = client.v1.balance_transactions.list(params={"payout": data["id"], "limit": 100},
                                                               options=options)
                    for txn in txns.auto_paging_iter():
                        if txn["type"] != "payout":
                            members.append({"id": txn["id"], "type": txn["type"], "net": txn["net"]})
                    yield {"kind": "payout", "id": data["id"], "account": account or "", "currency": data["currency"],
                           "amount": data["amount"], "status": data["status"], "members": members,
                           "sum_of_nets": sum(m["net"] for m in members)}
