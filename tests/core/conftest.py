"""Fixtures of the core tests (helpers live in core_helpers.py); the Stripe payloads are the repository's copy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from paysync.codec import AvroCodec
from paysync.paths import REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_helpers import (  # noqa: E402
    ObjectModel, Payload, assert_valid_upserts, load_payloads, parse_data_model,
)

STRIPE_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "stripe"


@pytest.fixture(scope="session")
def stripe_fixtures() -> Path:
    """tests/fixtures/stripe: real Stripe payloads captured into the repository (origins in its SOURCES.md)."""
    return STRIPE_FIXTURES


@pytest.fixture(scope="session")
def payloads(stripe_fixtures: Path) -> list[Payload]:
    """Every Stripe object of the real payload files (recipes and the 176-type catalogue excluded)."""
    return load_payloads(stripe_fixtures)


@pytest.fixture(scope="session")
def codec() -> AvroCodec:
    return AvroCodec()


@pytest.fixture(scope="session")
def data_model() -> dict[str, ObjectModel]:
    return parse_data_model((REPO_ROOT / "docs" / "data-model.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def check(codec: AvroCodec, data_model: dict[str, ObjectModel]) -> Any:
    """`check(upserts)` runs `assert_valid_upserts` against the real codec and data model."""
    return lambda upserts: assert_valid_upserts(upserts, codec, data_model)
