"""A faithful local Salesforce org for tests and demos, strict where Salesforce's documentation is: OAuth2/SOAP
login on two base URLs (`handle.login_url`, the login.salesforce.com stand-in, and `handle.base_url`, the org's My
Domain), REST, sObject Collections, Composite (collated), SOQL, Bulk API 2.0 ingest (paced, in the background),
validation from the SFDX metadata in `salesforce/`, sharing, limits, a latency model and fault injection.

    handle = start_emulator(tmp_path / "org.sqlite3", lock_rate=0.1, org_mode="admins")
    sf = Salesforce(instance_url=handle.instance_url, session_id=token, session=client_session(handle))
    handle.stop()

Run standalone with `paysync emulate salesforce --port 8443 --db FILE` (see `cli.py` for flags).
"""

from emulators.salesforce_emulator.handle import (
    DEFAULT_CREDENTIALS,
    EmulatorError,
    EmulatorHandle,
    client_session,
    start_emulator,
)

__all__ = ["DEFAULT_CREDENTIALS", "EmulatorError", "EmulatorHandle", "client_session", "start_emulator"]
