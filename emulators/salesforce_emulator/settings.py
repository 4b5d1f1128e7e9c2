"""The emulator's configuration: environment `PAYSYNC_SF_EMULATOR_*` (secrets also as `*_FILE`), overridden by
command-line flags. Defaults are test credentials, never real ones."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from paysync.paths import SALESFORCE_METADATA_DIR, state_dir
from paysync.settings import PaysyncSettings


class EmulatorSettings(PaysyncSettings):
    """Where to listen, what to accept, and the fault knobs at start."""

    model_config = SettingsConfigDict(env_prefix="PAYSYNC_SF_EMULATOR_", extra="ignore", validate_default=True)

    host: str = Field(default="127.0.0.1", description="listen address (keep it local)")
    port: int = Field(default=8443, ge=0, le=65535, description="listen port; 0 = any free port")
    db: Path = Field(default_factory=lambda: state_dir() / "salesforce-emulator.sqlite3", description="SQLite file")
    metadata_dir: Path = Field(default=SALESFORCE_METADATA_DIR, description="SFDX force-app/main/default")
    plain_http: bool = Field(default=False, description="serve HTTP instead of HTTPS (real clients need HTTPS)")
    client_id: str = Field(default="paysync-emulator-client", description="OAuth consumer key accepted")
    client_secret: SecretStr = Field(default=SecretStr("paysync-emulator-secret"), description="consumer secret")
    username: str = Field(default="integration@paysync.example", description="user name accepted")
    password: SecretStr = Field(default=SecretStr("emulator-password"), description="password accepted")
    security_token: SecretStr = Field(default=SecretStr("emulatortoken"), description="security token (SOAP)")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for JWT bearer logins")
    error_503_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lock_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0)
    session_ttl_s: float = Field(default=7200.0, gt=0)
    daily_limit: int = Field(default=100_000, ge=0)
    page_size: int = Field(default=2000, ge=1, le=2000, description="SOQL records per page")
    seed: int | None = Field(default=None, description="random seed for the fault knobs")
    ready_file: Path | None = Field(default=None, description="write {port, base_url} JSON here once listening")
