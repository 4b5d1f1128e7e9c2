"""The emulator's configuration: environment `PAYSYNC_SF_EMULATOR_*` (secrets also as `*_FILE`), overridden by
command-line flags. Defaults are test credentials, never real ones."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from paysync.paths import REPO_ROOT, SALESFORCE_METADATA_DIR, state_dir
from paysync.settings import PaysyncSettings


class EmulatorSettings(PaysyncSettings):
    """Where to listen, what to accept, and the fault knobs at start."""

    model_config = SettingsConfigDict(env_prefix="PAYSYNC_SF_EMULATOR_", extra="ignore", validate_default=True)

    host: str = Field(default="127.0.0.1", description="listen address (keep it local)")
    port: int = Field(default=8443, ge=0, le=65535, description="My Domain (instance) port; 0 = any free port")
    login_port: int = Field(default=0, ge=0, le=65535, description="generic login host port (login.salesforce.com "
                            "stand-in); 0 = any free port")
    db: Path = Field(default_factory=lambda: state_dir() / "salesforce-emulator.sqlite3", description="SQLite file")
    metadata_dir: Path = Field(default=SALESFORCE_METADATA_DIR, description="SFDX force-app/main/default")
    plain_http: bool = Field(default=False, description="serve HTTP instead of HTTPS (real clients need HTTPS)")
    client_id: str = Field(default="paysync-emulator-client", description="OAuth consumer key accepted")
    client_secret: SecretStr = Field(default=SecretStr("paysync-emulator-secret"), description="consumer secret")
    username: str = Field(default="integration@paysync.example", description="user name accepted")
    password: SecretStr = Field(default=SecretStr("emulator-password"), description="password accepted")
    security_token: SecretStr = Field(default=SecretStr("emulatortoken"), description="security token (SOAP)")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for JWT bearer logins")
    permission_set_file: Path | None = Field(default=None, description="the integration user's permission set "
                                             "(default: Paysync_Integration under salesforce/)")
    org_mode: Literal["default", "admins"] = Field(default="default", description="'admins': the org as its admins "
                                                   "leave it (validation rule, required field, private sharing, no "
                                                   "Orders); see org_modes.py")
    error_503_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lock_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lock_wrap_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="share of lock errors wrapped in "
                                  "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY")
    latency_ms: int = Field(default=0, ge=0, description="fixed latency per API call (ms)")
    latency_per_record_ms: int = Field(default=0, ge=0, description="extra latency per record saved (ms)")
    insert_window_ms: int = Field(default=0, ge=0, description="unlocked time between an insert's duplicate check "
                                  "and its write (ms)")
    bulk_queue_s: float = Field(default=3.0, ge=0, description="seconds a closed Bulk job stays UploadComplete")
    bulk_records_per_s: int = Field(default=3000, ge=1, description="Bulk job processing pace")
    session_ttl_s: float = Field(default=7200.0, gt=0)
    daily_limit: int = Field(default=100_000, ge=0)
    page_size: int = Field(default=2000, ge=1, le=2000, description="SOQL records per page")
    seed: int | None = Field(default=None, description="random seed for the fault knobs")
    ready_file: Path | None = Field(default=None, description="write {port, base_url, login_port, login_url} JSON "
                                    "here once listening")

    def permission_set_path(self) -> Path | None:
        """The permission set file to read `userPermissions` from (first `Paysync_Integration` under salesforce/)."""
        if self.permission_set_file is not None:
            return self.permission_set_file
        found = sorted((REPO_ROOT / "salesforce").rglob("Paysync_Integration.permissionset-meta.xml"))
        return found[0] if found else None
