"""What paysync knows about one Stripe object type, in one value: `StripeType`.

Every type module in `core.types` defines one `SPEC`; `core.registry` lists them. Everything that used
to be a list somewhere (the mappers, the order guard's ranks, the Kafka keys, the backfill's and the
reconciliation's list endpoints, the Salesforce objects and their external ids, the sink's write order)
is read from these values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from core.common import EventMeta
from core.config import MappingConfig

Upsert = dict[str, Any]
ObjectMapper = Callable[[dict[str, Any], EventMeta, MappingConfig], list[Upsert]]
Ranker = Callable[[Mapping[str, Any]], tuple[int, ...]]


@dataclass(frozen=True)
class StripeType:
    """One Stripe object type.

    - `name`: Stripe's `object` value (`charge`); `list_path`: its list endpoint (`/v1/charges`).
    - `mapper`: snapshot -> SalesforceUpsert dicts, for types carried by `stripe.events`; None for a type
      that has its own topic and entry point (balance transactions).
    - `rank`: the order guard's lifecycle rank of a snapshot (higher is later; never raises).
    - `statuses`: Stripe status -> picklist value; `status_ranks`: Stripe status -> lifecycle rank;
      `terminal`: statuses after which only a later-ranked status may follow.
    - `backfill_order`: position among the types `paysync backfill` lists as snapshots (None: not listed,
      its history comes from the events window or from another type).
    - `child_of_charge`: its events are keyed by its charge's id (same partition as the charge).
    - `sobjects`: the Salesforce objects it is written to (the customer: Account or Contact), all with the
      external id field `external_id_field`; `write_rank`: the sink writes lower ranks first (parents).
    """

    name: str
    list_path: str
    rank: Ranker
    sobjects: tuple[str, ...]
    external_id_field: str
    write_rank: int
    mapper: ObjectMapper | None = None
    statuses: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    status_ranks: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    terminal: frozenset[str] = frozenset()
    backfill_order: int | None = None
    child_of_charge: bool = False
