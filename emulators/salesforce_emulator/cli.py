"""`paysync emulate salesforce [--port N] [--db FILE] …`: a local Salesforce org over HTTPS.

Loads its schema from the SFDX metadata in `salesforce/`, keeps records in a SQLite file, and serves the OAuth2
token endpoint, SOAP login, REST (sObjects, Collections, Composite, SOQL, limits, describe) and Bulk API 2.0 ingest.
Two base URLs from one process and one CA: the org's My Domain on --port (the instance URL; every API) and the
generic login host on --login-port (login.salesforce.com stand-in: logins only; client credentials refused there).
A test CA and server certificate are generated next to the database (`sf-emulator-ca.pem`): give it to clients
(`requests.Session().verify`, `NODE_EXTRA_CA_CERTS`). With `--plain-http` the base URL is `http://…` (clients
must then be pointed at it explicitly).

Credentials accepted (flags or env `PAYSYNC_SF_EMULATOR_<NAME>`, secrets also `…_FILE`):
  --client-id / CLIENT_ID (default paysync-emulator-client), --client-secret / CLIENT_SECRET
  (paysync-emulator-secret), --username / USERNAME (integration@paysync.example), --password / PASSWORD
  (emulator-password), --security-token / SECURITY_TOKEN (emulatortoken), --jwt-public-key-file.
Fault knobs (also `POST /_emulator/faults`): --error-503-rate, --lock-rate, --lock-wrap-rate, --latency-ms,
  --latency-per-record-ms, --insert-window-ms, --bulk-queue-s, --bulk-records-per-s, --session-ttl-s,
  --daily-limit. `POST /_emulator/limits/reset` restores the daily budget; `GET /_emulator/stats` counts calls.
Latency model: each API call costs --latency-ms plus --latency-per-record-ms per record it saves.
--org-mode admins: the org as its admins leave it — validation rule on Stripe_Payment__c (blank Description__c and
  Amount__c > 450), Stripe_Refund__c.Reason__c required, private sharing (pre-seeded Opportunities of another
  owner), Orders disabled. See org_modes.py.
/limits answers only if --permission-set-file (default: salesforce/**/Paysync_Integration.permissionset-meta.xml)
  grants ViewSetup.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any

from pydantic import ValidationError

from emulators.salesforce_emulator.app import build
from emulators.salesforce_emulator.settings import EmulatorSettings
from paysync.logs import setup_logging

log = logging.getLogger("paysync.sf_emulator")
_FLAGS = ("host", "port", "login_port", "db", "metadata_dir", "permission_set_file", "org_mode", "client_id",
          "client_secret", "username", "password", "security_token", "jwt_public_key_file", "error_503_rate",
          "lock_rate", "lock_wrap_rate", "latency_ms", "latency_per_record_ms", "insert_window_ms", "bulk_queue_s",
          "bulk_records_per_s", "session_ttl_s", "daily_limit", "page_size", "seed", "ready_file")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync emulate salesforce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in _FLAGS:
        info = EmulatorSettings.model_fields[name]
        p.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=info.description or name)
    p.add_argument("--plain-http", action="store_true", default=None, help="serve plain HTTP instead of HTTPS")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str]) -> int:
    """Run the emulator until SIGTERM/SIGINT."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_level)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k in _FLAGS + ("plain_http",) and v is not None}
    try:
        settings = EmulatorSettings(**overrides)
    except ValidationError as exc:
        sys.stderr.write(f"invalid configuration: {exc}\n")
        return 2
    app = build(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for server in app.servers():
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    log.info("salesforce emulator listening", extra={"base_url": app.base_url, "login_url": app.login_url,
                                                      "db": str(settings.db), "org_mode": settings.org_mode})
    if settings.ready_file:
        tmp = settings.ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": app.port, "base_url": app.base_url, "login_port": app.login_port,
                                   "login_url": app.login_url, "pid_ready": True}))
        tmp.replace(settings.ready_file)
    stop.wait()
    app.close()
    return 0
