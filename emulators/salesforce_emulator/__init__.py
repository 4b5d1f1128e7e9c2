"""A faithful local Salesforce org for tests and demos: OAuth2/SOAP login, REST, sObject Collections, SOQL,
Bulk API 2.0 ingest, validation from the SFDX metadata in `salesforce/`, limits and fault injection.

    handle = start_emulator(tmp_path / "org.sqlite3", lock_rate=0.1)
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
