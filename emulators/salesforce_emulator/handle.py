"""Running the emulator from tests, benchmarks and the demo: `start_emulator()` starts it in a subprocess (so it
does not compete with the caller for the GIL) and returns an `EmulatorHandle`; `client_session(handle)` is a
`requests.Session` that trusts the emulator's CA and sends `https://login.salesforce.com` / `test.salesforce.com` to
the emulator's login host and other `https://*.salesforce.com` hosts (My Domain) to its My Domain host, so
simple-salesforce (unmodified) can log in with any of its flows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from emulators.salesforce_emulator.certs import ensure_jwt_keys, ensure_tls
from paysync.paths import REPO_ROOT

DEFAULT_CREDENTIALS = {
    "client_id": "paysync-emulator-client",
    "client_secret": "paysync-emulator-secret",
    "username": "integration@paysync.example",
    "password": "emulator-password",
    "security_token": "emulatortoken",
}


class EmulatorError(Exception):
    """The emulator did not start."""


@dataclass
class EmulatorHandle:
    """A running emulator. `base_url` is the org's My Domain (instance URL, every API; client credentials work
    here); `login_url` the generic login host (login.salesforce.com stand-in; logins only, client credentials
    refused). `credentials` holds what it accepts (plus `jwt_private_key_file`); `org_mode` "default" or "admins"."""

    base_url: str
    ca_cert_path: Path
    credentials: dict[str, str]
    db_path: Path
    process: subprocess.Popen[bytes]
    login_url: str = ""
    org_mode: str = "default"

    @property
    def instance_url(self) -> str:
        return self.base_url

    @property
    def instance(self) -> str:
        """`127.0.0.1:PORT`, what simple-salesforce calls `sf_instance`."""
        return urlsplit(self.base_url).netloc

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call an admin endpoint (`/_emulator/...`)."""
        resp = requests.request(method, self.base_url + path, json=body, verify=str(self.ca_cert_path), timeout=30)
        resp.raise_for_status()
        return resp.json()

    def set_faults(self, **knobs: Any) -> Any:
        return self.admin("POST", "/_emulator/faults", knobs)

    def stats(self) -> Any:
        return self.admin("GET", "/_emulator/stats")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_emulator(db_path: Path, port: int = 0, timeout: float = 30.0, **knobs: Any) -> EmulatorHandle:
    """Start `paysync emulate salesforce` on 127.0.0.1 with `db_path`; `knobs` are CLI flags without dashes
    (`lock_rate=0.2`, `session_ttl_s=5`, `daily_limit=100`, `client_id=…`, `org_mode="admins"`,
    `bulk_queue_s=0`, `latency_ms=50`, …; see `cli.py`)."""
    db_path = Path(db_path).resolve()
    folder = db_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tls = ensure_tls(folder)
    private_key, public_key = ensure_jwt_keys(folder)
    ready = folder / f".sf-emulator-ready-{os.getpid()}-{time.monotonic_ns()}.json"
    args = [sys.executable, "-m", "emulators.salesforce_emulator", "--port", str(port), "--db", str(db_path),
            "--ready-file", str(ready), "--jwt-public-key-file", str(public_key), "--log-level", "WARNING"]
    for name, value in knobs.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYSYNC_SF_EMULATOR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    log_file = open(folder / "sf-emulator.log", "ab")  # noqa: SIM115 - the child owns it for its lifetime
    process = subprocess.Popen(args, cwd=str(REPO_ROOT), env=env, stdout=log_file, stderr=log_file)
    log_file.close()
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise EmulatorError(f"emulator exited with {process.returncode}; see {folder / 'sf-emulator.log'}")
        if time.monotonic() > deadline:
            process.kill()
            raise EmulatorError("emulator did not become ready in time")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    ready.unlink()
    creds = {**DEFAULT_CREDENTIALS, **{k: str(v) for k, v in knobs.items() if k in DEFAULT_CREDENTIALS},
             "jwt_private_key_file": str(private_key)}
    return EmulatorHandle(info["base_url"], tls.ca_cert, creds, db_path, process, info["login_url"],
                          str(knobs.get("org_mode", "default")))


class _RedirectAdapter(HTTPAdapter):
    """Sends requests for `https://<anything>.salesforce.com` to the emulator instead."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self._target = urlsplit(target)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        request.url = urlunsplit((self._target.scheme, self._target.netloc, url.path, url.query, url.fragment))
        return super().send(request, **kwargs)


def client_session(handle: EmulatorHandle) -> requests.Session:
    """A session trusting the emulator's CA: login/test.salesforce.com go to the login host, other
    `*.salesforce.com` hosts to My Domain."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides `verify`, and proxies could capture 127.0.0.1
    session.verify = str(handle.ca_cert_path)
    adapter = _RedirectAdapter(handle.login_url or handle.base_url)
    for host in ("login", "test"):
        session.mount(f"https://{host}.salesforce.com", adapter)
    session.mount("https://", _SalesforceDomainAdapter(handle.base_url))
    return session


class _SalesforceDomainAdapter(_RedirectAdapter):
    """Like `_RedirectAdapter` but only for hosts ending in `.salesforce.com` (My Domain logins)."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        host = urlsplit(request.url or "").hostname or ""
        if host.endswith(".salesforce.com"):
            return super().send(request, **kwargs)
        return HTTPAdapter.send(self, request, **kwargs)
