"""Assembling the emulator from settings: metadata → schema (+ org mode), SQLite store, auth, faults, router, and
two bound servers on one CA: the org's My Domain (`base_url`, also the instance URL) and the generic login host
(`login_url`, the login.salesforce.com stand-in)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from emulators.salesforce_emulator.access import load_access  # DOCTOR hook
from emulators.salesforce_emulator.auth import Auth, Credentials
from emulators.salesforce_emulator.certs import ensure_tls
from emulators.salesforce_emulator.faults import Faults, Knobs
from emulators.salesforce_emulator.metadata import NS, MetadataError, load_schema
from emulators.salesforce_emulator.org import Org
from emulators.salesforce_emulator.org_modes import apply_mode, seed_other_owner_records
from emulators.salesforce_emulator.server import EmulatorServer, Router, make_server
from emulators.salesforce_emulator.settings import EmulatorSettings
from emulators.salesforce_emulator.store import Store


@dataclass
class App:
    org: Org
    server: EmulatorServer
    login_server: EmulatorServer
    base_url: str
    port: int
    login_url: str
    login_port: int

    def servers(self) -> tuple[EmulatorServer, EmulatorServer]:
        return self.server, self.login_server

    def close(self) -> None:
        for server in self.servers():
            server.shutdown()
            server.server_close()
        self.org.store.close()


def grants_view_setup(permission_set: Path | None) -> bool:
    """True if the permission set's `userPermissions` enable `ViewSetup` (View Setup and Configuration)."""
    if permission_set is None:
        return False
    try:
        root = ET.parse(permission_set).getroot()
    except (ET.ParseError, OSError) as exc:
        raise MetadataError(f"{permission_set}: {exc}") from exc
    for perm in root.findall("m:userPermissions", NS):
        if perm.findtext("m:name", "", NS) == "ViewSetup" and perm.findtext("m:enabled", "", NS) == "true":
            return True
    return False


def _knobs(settings: EmulatorSettings) -> Knobs:
    return Knobs(error_503_rate=settings.error_503_rate, lock_rate=settings.lock_rate,
                 lock_wrap_rate=settings.lock_wrap_rate, latency_ms=settings.latency_ms,
                 latency_per_record_ms=settings.latency_per_record_ms, session_ttl_s=settings.session_ttl_s,
                 daily_limit=settings.daily_limit, insert_window_ms=settings.insert_window_ms,
                 bulk_queue_s=settings.bulk_queue_s, bulk_records_per_s=settings.bulk_records_per_s)


def build(settings: EmulatorSettings) -> App:
    """A ready-to-serve emulator (sockets bound; call `serve_forever()` on both `servers()`)."""
    schema = load_schema(settings.metadata_dir)
    mode = apply_mode(settings.org_mode, schema)
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db, schema)
    faults = Faults(_knobs(settings), settings.seed)
    creds = Credentials(
        settings.client_id, settings.client_secret.get_secret_value(), settings.username,
        settings.password.get_secret_value(), settings.security_token.get_secret_value(),
        settings.jwt_public_key_file.read_bytes() if settings.jwt_public_key_file else None)
    auth = Auth(creds, faults, base_url="")
    org = Org(schema, store, faults, auth, page_size=settings.page_size, mode=mode,
              view_setup=grants_view_setup(settings.permission_set_path()))
    org.access = load_access(settings.metadata_dir)  # DOCTOR hook: permission sets -> describe (access.py)
    seed_other_owner_records(org)
    tls = None if settings.plain_http else ensure_tls(settings.db.parent)
    router = Router(org)
    server = make_server(router, settings.host, settings.port, tls, "mydomain")
    login_server = make_server(router, settings.host, settings.login_port, tls, "login")
    scheme = "http" if tls is None else "https"
    port, login_port = server.server_address[1], login_server.server_address[1]
    auth.base_url = f"{scheme}://{settings.host}:{port}"
    auth.login_url = f"{scheme}://{settings.host}:{login_port}"
    return App(org, server, login_server, auth.base_url, port, auth.login_url, login_port)
