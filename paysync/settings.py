"""Configuration, read once and validated at start-up.

Every component defines its own `BaseSettings` subclass next to its code and builds it once in
its entry point; this module holds what they share: the Kafka connection and the `*_FILE`
convention for secrets (`PAYSYNC_STRIPE_API_KEY_FILE=/run/secrets/key` reads the key from that
file). Secrets are `SecretStr`: printing a settings object shows `**********`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "PAYSYNC_"


def comma_or_line_list(value: Any) -> Any:
    """A `before` validator for list settings: a string separated by commas or newlines becomes its non-empty,
    stripped parts (an env var or a `*_FILE` with one secret per line); anything else passes unchanged."""
    if isinstance(value, str):
        return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    return value


class ConfigError(Exception):
    """Configuration is missing or invalid; the message names the setting, never a secret's value."""


class _FileSecretsSource(PydanticBaseSettingsSource):
    """Reads `<PREFIX><FIELD>_FILE` for every field: the file's content (stripped) is the value."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env_name = f"{self.config.get('env_prefix', '')}{field_name}_FILE".upper()
        path = os.environ.get(env_name)
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise ConfigError(f"{env_name} points to a file that cannot be read: {exc.strerror}") from None

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is not None:
                values[key] = value
        return values


class PaysyncSettings(BaseSettings):
    """Base of every component's settings: `PAYSYNC_` prefix, `*_FILE` secrets, unknown keys ignored."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSecretsSource(settings_cls), dotenv_settings)


class KafkaSettings(PaysyncSettings):
    """How to reach Kafka. `KAFKA_BOOTSTRAP_SERVERS` (or `PAYSYNC_KAFKA_BOOTSTRAP_SERVERS`) wins."""

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "PAYSYNC_KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port] of the Kafka cluster",
    )
    kafka_security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_SSL …")
    kafka_sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-512 …")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    schema_registry_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "PAYSYNC_SCHEMA_REGISTRY_URL"),
        description="Confluent Schema Registry; unset = Avro single-object encoding",
    )
    topic_partitions: int = Field(default=6, ge=1, le=1000, description="partitions of the data topics")
    topic_prefix: str = Field(default="", description="prefix for every topic name (several pipelines per cluster)")

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings for a client of this cluster (secrets included: never log the result)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username or ""
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        return conf
