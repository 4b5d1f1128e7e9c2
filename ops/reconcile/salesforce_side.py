"""Reading what Salesforce holds, by SOQL, with exact decimals.

Rows are fetched through the REST query endpoint with `nextRecordsUrl` paging and parsed with
`parse_float=Decimal` (simple-salesforce's own `query_all` would turn money into floats).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import requests

from core import registry

Key = tuple[str, str]

EXTERNAL_ID_FIELDS: Mapping[str, str] = registry.external_id_fields()  # sobject -> external id field


class SalesforceReader:
    """SOQL over an authenticated `requests.Session`; `token()` returns (access token, instance URL)."""

    def __init__(self, session: requests.Session, token: Callable[[], tuple[str, str]], api_version: str = "59.0",
                 relogin: Callable[[], tuple[str, str]] | None = None) -> None:
        self._http = session
        self._token = token
        self._relogin = relogin
        self._version = api_version
        self.calls = 0

    def _get(self, path_or_url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        for attempt in range(2):
            access, instance = self._token()
            url = path_or_url if path_or_url.startswith("http") else instance.rstrip("/") + path_or_url
            resp = self._http.get(url, params=params, headers={"Authorization": f"Bearer {access}"}, timeout=120)
            self.calls += 1
            if resp.status_code == 401 and attempt == 0 and self._relogin is not None:
                self._token = self._relogin
                continue
            if resp.status_code != 200:
                raise RuntimeError(f"SOQL failed ({resp.status_code}): {resp.text[:300]}")
            return json.loads(resp.text, parse_float=Decimal)  # type: ignore[no-any-return]
        raise RuntimeError("SOQL failed: session could not be renewed")

    def query(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every row of `soql`, following `nextRecordsUrl`."""
        page = self._get(f"/services/data/v{self._version}/query", {"q": soql})
        while True:
            yield from page.get("records", [])
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self._get(next_url)

    def field_names(self, sobject: str) -> set[str]:
        """The fields of `sobject` this org has and the user can read (describe; one call)."""
        page = self._get(f"/services/data/v{self._version}/sobjects/{sobject}/describe")
        return {str(f["name"]) for f in page.get("fields", [])}

    def records(self, sobject: str, fields: set[str]) -> dict[Key, dict[str, Any]]:
        """Every record of `sobject` that has an external id, as {field (or Rel__r.Field): value}."""
        ext = EXTERNAL_ID_FIELDS[sobject]
        wanted = sorted(fields | {ext})
        soql = f"SELECT {', '.join(wanted)} FROM {sobject} WHERE {ext} != null"
        out: dict[Key, dict[str, Any]] = {}
        for row in self.query(soql):
            flat = {f: _dig(row, f) for f in wanted}
            out[(sobject, str(flat[ext]))] = flat
        return out


def _dig(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
