"""A small Salesforce client for the sink: Composite, Collections upsert/create, Bulk 2.0 upsert, /limits.

It reuses one session across batches and logs in again when Salesforce answers
`INVALID_SESSION_ID` (on every path, Bulk included). Every call goes through `request()`, which
counts it, reads `Sforce-Limit-Info` into the budget and turns a failure into `CallError` carrying the
error table's `Decision`. The instance URL comes from the login (the emulator's in tests).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from simple_salesforce import Salesforce

from paysync.outcomes import Outcome, backoff_delay
from sinks.auth import AuthError, Authenticator
from sinks.errors import Decision, classify_call
from sinks.metrics import SinkMetrics
from sinks.payload import parse_csv
from sinks.settings import SalesforceSettings, SinkSettings

log = logging.getLogger(__name__)

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")


class CallError(Exception):
    """A Salesforce call failed; `decision` says what to do about it."""

    def __init__(self, decision: Decision, status: int | None, message: str) -> None:
        super().__init__(f"{decision.code} ({status}): {message}")
        self.decision = decision
        self.status = status
        self.message = message


@dataclass
class Budget:
    """The daily API request budget as last seen (`used` of `max`; 0/0 = unknown)."""

    used: int = 0
    max: int = 0
    seen_at: float = 0.0

    def update(self, used: int, max_: int) -> None:
        self.used, self.max, self.seen_at = used, max_, time.monotonic()

    def share_used(self) -> float:
        return self.used / self.max if self.max else 0.0


@dataclass
class BulkResult:
    """The outcome of one Bulk 2.0 ingest job."""

    job_id: str
    state: str
    error_message: str = ""
    successful: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    unprocessed: list[dict[str, str]] = field(default_factory=list)


def _error_of(resp: requests.Response) -> tuple[str | None, str]:
    """(errorCode, message) of a Salesforce error response, whatever its shape."""
    try:
        body: Any = resp.json()
    except ValueError:
        return None, resp.text[:500]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("statusCode") or body.get("error")
        message = body.get("message") or body.get("error_description") or ""
        return (str(code) if code else None), str(message)
    return None, str(body)[:500]


class SalesforceClient:
    """Thread-safe enough for a small pool: calls share one `requests.Session` and one login."""

    def __init__(
        self,
        settings: SalesforceSettings,
        metrics: SinkMetrics,
        http: requests.Session | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._s = settings
        self._metrics = metrics
        self._http = http or requests.Session()
        if settings.salesforce_ca_bundle:
            self._http.verify = settings.salesforce_ca_bundle
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self._http.mount("https://", adapter)
        self._http.mount("http://", adapter)
        self._auth = authenticator or Authenticator(settings, self._http)
        self._lock = threading.Lock()
        self._sf: Salesforce | None = None
        self._generation = 0
        self.budget = Budget()
        self._reauth_attempts = getattr(settings, "sink_reauth_attempts", 3)
        self.logins = 0

    # session -----------------------------------------------------------------------------------

    def _login_locked(self) -> None:
        last: AuthError | None = None
        for attempt in range(4):
            try:
                token = self._auth.login()
                break
            except AuthError as exc:
                last = exc
                if not exc.retriable:
                    raise CallError(Decision(Outcome.PAUSE, "AUTH_FAILED"), None, str(exc)) from None
                time.sleep(backoff_delay(attempt, base=0.5, cap=5.0))
        else:
            raise CallError(Decision(Outcome.RETRY, "AUTH_UNAVAILABLE"), None, str(last))
        self._metrics.api_calls.labels(kind="login").inc()
        self.logins += 1
        self._sf = Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            session=self._http,
            version=self._s.salesforce_api_version,
        )
        self._generation += 1
        log.info("salesforce session opened", extra={"instance_url": token.instance_url, "logins": self.logins})

    def _session(self) -> tuple[Salesforce, int]:
        with self._lock:
            if self._sf is None:
                self._login_locked()
            assert self._sf is not None
            return self._sf, self._generation

    def _relogin(self, generation: int) -> None:
        """Log in again unless another thread already did since `generation`."""
        with self._lock:
            if self._generation == generation:
                self._sf = None
                self._login_locked()

    # calls -------------------------------------------------------------------------------------

    def _note_limit(self, resp: requests.Response) -> None:
        info = resp.headers.get("Sforce-Limit-Info")
        if info:
            m = _LIMIT_INFO.search(info)
            if m:
                self.budget.update(int(m.group(1)), int(m.group(2)))
                self._metrics.api_budget.labels(kind="used").set(self.budget.used)
                self._metrics.api_budget.labels(kind="max").set(self.budget.max)

    def request(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: str | bytes | None = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """One REST call relative to `/services/data/vXX.X/`; re-logs in on INVALID_SESSION_ID; raises CallError."""
        for attempt in range(self._reauth_attempts + 1):
            sf, generation = self._session()
            headers = {"Authorization": f"Bearer {sf.session_id}", "Accept": "application/json"}
            if content_type:
                headers["Content-Type"] = content_type
            self._metrics.api_calls.labels(kind=kind).inc()
            try:
                resp = self._http.request(
                    method, sf.base_url + path, headers=headers, json=json, params=params, verify=self._http.verify,
                    data=data.encode("utf-8") if isinstance(data, str) else data,
                    timeout=self._s.salesforce_timeout_s,
                )
            except requests.Timeout:
                raise CallError(classify_call(None, "TIMEOUT"), None, f"{kind} call timed out") from None
            except requests.RequestException as exc:
                raise CallError(classify_call(None, "CONNECTION_ERROR"), None, type(exc).__name__) from None
            self._note_limit(resp)
            if resp.status_code < 300:
                return resp
            code, message = _error_of(resp)
            decision = classify_call(resp.status_code, code, message)
            if decision.outcome is Outcome.REAUTH and attempt < self._reauth_attempts:
                self._metrics.retries.labels(code=decision.code).inc()
                self._relogin(generation)
                continue
            raise CallError(decision, resp.status_code, message)
        raise AssertionError("unreachable")

    def upsert_collection(self, sobject: str, external_id_field: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """sObject Collections upsert (≤ 200 records); one result per record, in order."""
        resp = self.request("collections_upsert", "PATCH", f"composite/sobjects/{sobject}/{external_id_field}", json=body)
        return list(resp.json())

    def composite(self, subrequests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`POST /composite` (allOrNone false, in order): one API call; one result per subrequest, in order."""
        resp = self.request("composite", "POST", "composite", json={"allOrNone": False, "compositeRequest": subrequests})
        body = resp.json()
        results = body.get("compositeResponse") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(subrequests):
            raise CallError(Decision(Outcome.RETRY, "RESULT_MISMATCH"), resp.status_code,
                            f"composite answered {len(results or [])} results for {len(subrequests)} subrequests")
        return results

    @property
    def api_version(self) -> str:
        return self._s.salesforce_api_version

    def create_collection(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """sObject Collections create (insert only); one result per record, in order."""
        resp = self.request("collections_create", "POST", "composite/sobjects", json=body)
        return list(resp.json())

    def query(self, soql: str) -> list[dict[str, Any]]:
        """SOQL query, every page (used by tools and tests, not by the write path)."""
        resp = self.request("query", "GET", "query/", params={"q": soql}).json()
        records = list(resp.get("records") or [])
        while not resp.get("done", True) and resp.get("nextRecordsUrl"):
            path = resp["nextRecordsUrl"].split(f"/v{self._s.salesforce_api_version}/", 1)[-1]
            resp = self.request("query", "GET", path).json()
            records.extend(resp.get("records") or [])
        return records

    def read_limits(self) -> Budget:
        """GET /limits: refresh the budget from DailyApiRequests."""
        resp = self.request("limits", "GET", "limits/")
        daily = resp.json().get("DailyApiRequests") or {}
        max_ = int(daily.get("Max") or 0)
        remaining = int(daily.get("Remaining") or 0)
        self.budget.update(max_ - remaining, max_)
        self._metrics.api_budget.labels(kind="used").set(self.budget.used)
        self._metrics.api_budget.labels(kind="max").set(self.budget.max)
        return self.budget

    def _bulk_step(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One Bulk call, retried in place on transient failures (so one 503 does not cost the whole job)."""
        for attempt in range(5):
            try:
                return self.request("bulk", method, path, **kwargs)
            except CallError as exc:
                if exc.decision.outcome is not Outcome.RETRY or attempt == 4:
                    raise
                self._metrics.retries.labels(code=exc.decision.code).inc()
                time.sleep(backoff_delay(attempt, base=0.1, cap=2.0))
        raise AssertionError("unreachable")

    def bulk_upsert(self, sobject: str, external_id_field: str, csv_text: str, poll_max_s: float, timeout_s: float) -> BulkResult:
        """A whole Bulk 2.0 upsert job: create, upload, close, poll, read results."""
        job = self._bulk_step("POST", "jobs/ingest", json={
            "object": sobject, "operation": "upsert", "externalIdFieldName": external_id_field,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF",
        }).json()
        job_id = job["id"]
        base = f"jobs/ingest/{job_id}"
        try:
            self._bulk_step("PUT", f"{base}/batches", data=csv_text, content_type="text/csv; charset=UTF-8")
            self._bulk_step("PATCH", base, json={"state": "UploadComplete"})
            deadline = time.monotonic() + timeout_s
            delay = 0.05
            while True:
                info = self._bulk_step("GET", base).json()
                state = info.get("state", "")
                if state in ("JobComplete", "Failed", "Aborted"):
                    break
                if time.monotonic() > deadline:
                    raise CallError(Decision(Outcome.RETRY, "BULK_TIMEOUT"), None, f"job {job_id} still {state}")
                time.sleep(delay)
                delay = min(poll_max_s, delay * 2)
            result = BulkResult(job_id=job_id, state=state, error_message=str(info.get("errorMessage") or ""))
            if state == "JobComplete":
                total = csv_text.count("\n") - 1  # one record per line (values with newlines only add lines)
                failed = int(info.get("numberRecordsFailed") or 0)
                processed = int(info.get("numberRecordsProcessed") or 0)
                if processed > failed:
                    result.successful = parse_csv(self._bulk_step("GET", f"{base}/successfulResults").text)
                if failed:
                    result.failed = parse_csv(self._bulk_step("GET", f"{base}/failedResults").text)
                if processed < total:
                    result.unprocessed = parse_csv(self._bulk_step("GET", f"{base}/unprocessedrecords").text)
        except CallError:
            self._abort(base)
            raise
        return result

    def _abort(self, base: str) -> None:
        try:
            self.request("bulk", "PATCH", base, json={"state": "Aborted"})
        except CallError as exc:
            log.warning("could not abort bulk job", extra={"job": base, "error": exc.decision.code})


def client_from_settings(settings: SinkSettings, metrics: SinkMetrics) -> SalesforceClient:
    """The client the sink uses (a fresh `requests.Session`)."""
    return SalesforceClient(settings, metrics)
