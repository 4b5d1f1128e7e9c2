"""Assembling the emulator from settings: metadata → schema, SQLite store, auth, faults, router, bound server."""

from __future__ import annotations

from dataclasses import dataclass

from emulators.salesforce_emulator.auth import Auth, Credentials
from emulators.salesforce_emulator.certs import ensure_tls
from emulators.salesforce_emulator.faults import Faults, Knobs
from emulators.salesforce_emulator.metadata import load_schema
from emulators.salesforce_emulator.org import Org
from emulators.salesforce_emulator.server import EmulatorServer, Router, make_server
from emulators.salesforce_emulator.settings import EmulatorSettings
from emulators.salesforce_emulator.store import Store


@dataclass
class App:
    org: Org
    server: EmulatorServer
    base_url: str
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.org.store.close()


def build(settings: EmulatorSettings) -> App:
    """A ready-to-serve emulator (socket bound; call `server.serve_forever()`)."""
    schema = load_schema(settings.metadata_dir)
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db, schema)
    knobs = Knobs(settings.error_503_rate, settings.lock_rate, settings.latency_ms, settings.session_ttl_s,
                  settings.daily_limit)
    faults = Faults(knobs, settings.seed)
    creds = Credentials(
        settings.client_id, settings.client_secret.get_secret_value(), settings.username,
        settings.password.get_secret_value(), settings.security_token.get_secret_value(),
        settings.jwt_public_key_file.read_bytes() if settings.jwt_public_key_file else None)
    auth = Auth(creds, faults, base_url="")
    org = Org(schema, store, faults, auth, page_size=settings.page_size)
    tls = None if settings.plain_http else ensure_tls(settings.db.parent)
    server = make_server(Router(org), settings.host, settings.port, tls)
    port = server.server_address[1]
    auth.base_url = f"{'http' if tls is None else 'https'}://{settings.host}:{port}"
    return App(org, server, auth.base_url, port)
