"""Configuration, read once and validated at start-up.

Every component defines its own settings class next to its code and builds it once in its entry
point. The parts they share are small settings models of their own, which a component composes as
fields (`kafka: KafkaConnection`, `topics: TopicSettings`) rather than inheriting them: each part
reads its own environment variables (`KAFKA_BOOTSTRAP_SERVERS`, `PAYSYNC_TOPIC_PREFIX` …) when the
component is built (no component inherits another's settings). The `*_FILE` convention holds for every field
(`PAYSYNC_STRIPE_API_KEY_FILE=/run/secrets/key` reads the key from that file). Secrets are
`SecretStr`: printing a settings object shows `**********`. `env_name` / `settings_env` write a
component's environment from the class that reads it (the local pipeline), so names cannot drift.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr
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


# For a component composed of parts: a keyword argument none of its fields takes (a part's field given flat,
# `SinkSettings(topic_prefix=…)`) is refused instead of ignored; other components' variables in the environment
# are still no concern of it.
COMPOSED_CONFIG = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)


class KafkaConnection(PaysyncSettings):
    """How to reach Kafka and its Schema Registry. `KAFKA_BOOTSTRAP_SERVERS` (or `PAYSYNC_KAFKA_BOOTSTRAP_SERVERS`)
    and `SCHEMA_REGISTRY_URL` (or `PAYSYNC_SCHEMA_REGISTRY_URL`) win; the rest are `PAYSYNC_KAFKA_*`."""

    model_config = SettingsConfigDict(
        env_prefix="PAYSYNC_KAFKA_", extra="ignore", validate_default=True, validate_by_name=True,
        validate_by_alias=True,
    )

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "PAYSYNC_KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port] of the Kafka cluster",
    )
    security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_SSL …")
    sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-512 …")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    schema_registry_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "PAYSYNC_SCHEMA_REGISTRY_URL"),
        description="Confluent Schema Registry; unset = Avro single-object encoding",
    )

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings for a client of this cluster (secrets included: never log the result)."""
        conf: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        return conf


class TopicSettings(PaysyncSettings):
    """How the data topics are named and sized: `PAYSYNC_TOPIC_PREFIX`, `PAYSYNC_TOPIC_PARTITIONS`."""

    model_config = SettingsConfigDict(env_prefix="PAYSYNC_TOPIC_", extra="ignore", validate_default=True)

    prefix: str = Field(default="", description="prefix for every topic name (several pipelines per cluster)")
    partitions: int = Field(default=6, ge=1, le=1000, description="partitions of the data topics")
    replication_factor: int | None = Field(
        default=None, ge=1, le=32,
        description="replicas of every paysync topic (changelogs included); unset = 3 on a cluster of three or more "
                    "brokers, 1 on a one-node development broker")
    min_insync_replicas: int | None = Field(
        default=None, ge=1, le=32,
        description="min.insync.replicas of every paysync topic; unset = 2 when replicated three times or more, else 1")


def env_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets `field_name` of `settings_cls`: its first alias if it has one, else the
    class's prefix + the field name. KeyError names a field the class does not have (a renamed setting)."""
    info = settings_cls.model_fields[field_name]
    annotation = info.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        raise TypeError(f"{settings_cls.__name__}.{field_name} is a composed part: name its own class's fields")
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"{settings_cls.model_config.get('env_prefix', '')}{field_name}".upper()


def settings_env(settings_cls: type[BaseSettings], **values: object) -> dict[str, str]:
    """Environment variables that set these fields of `settings_cls` (values as `str()`; lists comma-joined)."""
    return {
        env_name(settings_cls, name): ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        for name, value in values.items()
    }
