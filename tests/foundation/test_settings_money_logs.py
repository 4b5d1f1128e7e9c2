"""Settings (read once, `*_FILE` secrets, never printed), exact money, and log scrubbing."""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paysync.logs import scrub, setup_logging
from paysync.pan import REDACTED, luhn_ok, redact_card_numbers
from paysync.money import THREE_DECIMAL, ZERO_DECIMAL, MoneyError, exponent, to_decimal, to_decimal_str, to_minor
from paysync.settings import ConfigError, KafkaConnection, TopicSettings


def test_bootstrap_from_kafka_bootstrap_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    assert KafkaConnection().bootstrap_servers == "broker-a:9092,broker-b:9092"


def test_secret_from_file_is_never_printed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2-very-secret\n")
    monkeypatch.setenv("PAYSYNC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("PAYSYNC_KAFKA_SASL_PASSWORD_FILE", str(secret))
    settings = KafkaConnection()
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == "hunter2-very-secret"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert settings.confluent_config()["sasl.password"] == "hunter2-very-secret"


def test_unreadable_secret_file_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PAYSYNC_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="PAYSYNC_KAFKA_SASL_PASSWORD_FILE"):
        KafkaConnection()


def test_invalid_setting_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSYNC_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValueError, match="partitions"):
        TopicSettings()


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(1050, "usd", "10.50"), (1000, "JPY", "1000"), (1234, "bhd", "1.234"), (-5, "kwd", "-0.005"), (0, "eur", "0.00"),
     (7, "krw", "7")],
)
def test_minor_units_to_decimal_strings(minor: int, currency: str, text: str) -> None:
    assert to_decimal_str(minor, currency) == text
    assert to_minor(text, currency) == minor


def test_money_rejects_floats_and_excess_precision() -> None:
    with pytest.raises(MoneyError):
        to_decimal(10.5, "usd")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        to_minor("1.5", "jpy")
    with pytest.raises(MoneyError):
        exponent("dollars")


@given(st.integers(min_value=-(10**15), max_value=10**15),
       st.sampled_from(sorted(ZERO_DECIMAL | THREE_DECIMAL | {"usd", "eur", "gbp"})))
def test_money_round_trip(minor: int, currency: str) -> None:
    value = to_decimal(minor, currency)
    assert isinstance(value, Decimal)
    assert -value.as_tuple().exponent == exponent(currency)  # type: ignore[operator]
    assert to_minor(value, currency) == minor


def test_scrub_removes_secrets_and_card_numbers() -> None:
    text = ("key sk_live_51HxYzAbCdEfGh secret whsec_abcdefghijkl Authorization: Bearer 00Dxx!AQ0.abcdefgh "
            "card 4242 4242 4242 4242 and 4000056655665556 but not ch_1234567890123 or 1234567890123")
    out = scrub(text)
    for leaked in ("sk_live_51HxYzAbCdEfGh", "whsec_abcdefghijkl", "00Dxx!AQ0.abcdefgh", "4242 4242 4242 4242",
                   "4000056655665556"):
        assert leaked not in out
    assert "1234567890123" in out  # not Luhn-valid: kept


def test_scrub_keeps_decimal_numbers_of_logs_whole_and_still_catches_cards_beside_them() -> None:
    fraction, whole = "4242424242424242", "378282246310005"  # both Luhn-valid
    assert luhn_ok(fraction) and luhn_ok(whole)
    text = f"commit runtime={46}.{fraction} offset {whole}.75; paid with {fraction}. then 1.5 {whole}"
    out = scrub(text)
    assert f"runtime=46.{fraction} offset {whole}.75;" in out  # a timing and a float are numbers, not cards
    assert f"paid with {REDACTED}. then 1.5 {REDACTED}" in out  # a card ending a sentence, a card after a float
    assert redact_card_numbers(f"46.{fraction}") == f"46.{REDACTED}"  # payload text keeps the stricter rule


def test_json_logs_carry_extras_and_are_scrubbed() -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    logging.getLogger("paysync.test").info("published", extra={"event_id": "evt_1", "token": "sk_test_abcdefghij12"})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["msg"] == "published" and line["event_id"] == "evt_1" and line["level"] == "info"
    assert "sk_test_abcdefghij12" not in stream.getvalue()
