"""The emulator and a simple-salesforce client logged in to it, shared by this folder's tests (one org per module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from simple_salesforce import Salesforce

from emulators.salesforce_emulator import EmulatorHandle, client_session, start_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """A fresh emulator for the module (seeded, so injected faults fall the same way every run)."""
    handle = start_emulator(tmp_path_factory.mktemp("sfemu") / "org.sqlite3", seed=7)
    yield handle
    handle.stop()


def password_client(handle: EmulatorHandle) -> Salesforce:
    """simple-salesforce 1.12.x, unmodified, logged in to `handle` with the OAuth password flow."""
    c = handle.credentials
    return Salesforce(username=c["username"], password=c["password"], consumer_key=c["client_id"],
                      consumer_secret=c["client_secret"], session=client_session(handle))


@pytest.fixture()
def sf(emulator: EmulatorHandle) -> Salesforce:
    """simple-salesforce 1.12.x, unmodified, logged in with the OAuth password flow."""
    return password_client(emulator)
