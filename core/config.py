"""The mapping's product choices: `MappingConfig`, read from `PAYSYNC_MAPPING_*` by `mapping_config(settings)`.

Every component that maps (the stream worker, `paysync reconcile`, the demo, the chaos invariants) builds its
`MappingConfig` with `mapping_config`, so they all follow the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field

from paysync.settings import PaysyncSettings

# Account: the customer is an Account; Contact: a Contact (no Account); AccountAndContact: the Account and the
# customer's Contact under it (`AccountId` by the Account's external id).
CustomerTarget = Literal["Account", "Contact", "AccountAndContact"]


@dataclass(frozen=True)
class MappingConfig:
    """Product choices the mappings follow; built by `mapping_config`. Defaults are the product defaults."""

    customer_target: CustomerTarget = "Account"
    opportunity_metadata_keys: tuple[str, ...] = ("salesforce_opportunity_id",)
    order_metadata_keys: tuple[str, ...] = ("salesforce_order_id",)
    legal_entities: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    multi_currency: bool = False
    pii_allowlist: frozenset[str] = frozenset({"name", "email", "phone"})


class MappingSettings(PaysyncSettings):
    """`PAYSYNC_MAPPING_*`: the settings behind `MappingConfig` (the stream worker's settings compose them as
    `StreamSettings.mapping`; reconcile, the demo and chaos read them through `mapping_config()`)."""

    mapping_customer_target: CustomerTarget = Field(default="Account", description="Account, Contact or AccountAndContact")
    mapping_opportunity_metadata_keys: tuple[str, ...] | None = Field(default=None, description="None = mapping default")
    mapping_order_metadata_keys: tuple[str, ...] | None = Field(default=None, description="None = mapping default")
    mapping_legal_entities: dict[str, str] = Field(default_factory=dict, description="Connect account -> legal entity")
    mapping_multi_currency: bool = False


def mapping_config(settings: MappingSettings | None = None) -> MappingConfig:
    """The `MappingConfig` of `settings` (None: `MappingSettings()` read from the environment now)."""
    s = MappingSettings() if settings is None else settings
    overrides: dict[str, Any] = {
        "customer_target": s.mapping_customer_target,
        "legal_entities": MappingProxyType(dict(s.mapping_legal_entities)),
        "multi_currency": s.mapping_multi_currency,
    }
    if s.mapping_opportunity_metadata_keys is not None:
        overrides["opportunity_metadata_keys"] = tuple(s.mapping_opportunity_metadata_keys)
    if s.mapping_order_metadata_keys is not None:
        overrides["order_metadata_keys"] = tuple(s.mapping_order_metadata_keys)
    return MappingConfig(**overrides)
