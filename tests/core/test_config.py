"""`mapping_config(settings)`: the one way every component turns `PAYSYNC_MAPPING_*` into a `MappingConfig`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.config import MappingConfig, MappingSettings, mapping_config
from streams.settings import StreamSettings


def test_defaults_are_the_product_defaults() -> None:
    assert mapping_config(MappingSettings()) == MappingConfig()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_MAPPING_CUSTOMER_TARGET", "Contact")
    monkeypatch.setenv("PAYSYNC_MAPPING_MULTI_CURRENCY", "true")
    monkeypatch.setenv("PAYSYNC_MAPPING_LEGAL_ENTITIES", '{"acct_1": "Paysync GmbH"}')
    monkeypatch.setenv("PAYSYNC_MAPPING_OPPORTUNITY_METADATA_KEYS", '["opp", "sf_opp"]')
    cfg = mapping_config()
    assert cfg == mapping_config(StreamSettings().mapping)  # the stream worker reads the same settings
    assert (cfg.customer_target, cfg.multi_currency) == ("Contact", True)
    assert dict(cfg.legal_entities) == {"acct_1": "Paysync GmbH"}
    assert cfg.opportunity_metadata_keys == ("opp", "sf_opp")
    assert cfg.order_metadata_keys == MappingConfig().order_metadata_keys


def test_an_unknown_customer_target_is_refused_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_MAPPING_CUSTOMER_TARGET", "Lead")
    with pytest.raises(ValidationError):
        MappingSettings()
