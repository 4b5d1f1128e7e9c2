"""A small Salesforce client for the sink: Composite, Collections upsert/update/create, Bulk 2.0 upsert.

It reuses one session across batches and logs in again when Salesforce answers
`INVALID_SESSION_ID` (on every path, Bulk included). Every call goes through `request()`, which
counts it, reads `Sforce-Limit-Info` into the budget (so the sink never needs `/limits`, which requires the
"View Setup and Configuration" permission) and turns a failure into `CallError` carrying the error table's
`Decision`. The instance URL comes from the login (the emulator's in tests).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from simple_salesforce.api import Salesforce

from paysync.outcomes import Outcome, backoff_delay
from sinks.auth import AuthError, Authenticator
from sinks.errors import Decision, classify_call, error_fields
from sinks.metrics import SinkMetrics
from sinks.payload import parse_csv
from sinks.settings import SalesforceSettings

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
    """The daily API request budget as last seen in `Sforce-Limit-Info` (`used` of `max`; 0/0 = unknown)."""

    used: int = 0
    max: int = 0

    def update(self, used: int, max_: int) -> None:
        self.used, self.max = used, max_

    def share_used(self) -> float:
        return self.used / self.max if self.max else 0.0


@dataclass
class BulkResult:
    """The outcome of one finished Bulk 2.0 ingest job (rows of the results CSVs it had to read)."""

    job_id: str
    state: str
    error_message: str = ""
    processed: int = 0
    successful: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    all_others_succeeded: bool = False  # every processed record not in `failed` succeeded (no successfulResults read)


def _error_of(resp: requests.Response) -> tuple[str | None, str]:
    """(errorCode, message) of a Salesforce error response."""
    try:
        body: Any = resp.json()
    except ValueError:
        return None, resp.text[:500]
    return error_fields(body)


class SalesforceClient:
    """Thread-safe enough for a small pool: calls share one `requests.Session` and one login."""

    def __init__(
        self,
        settings: SalesforceSettings,
        metrics: SinkMetrics,
        http: requests.Session | None = None,
        authenticator: Authenticator | None = None,
        reauth_attempts: int = 3,
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
        self._reauth_attempts = reauth_attempts  # the sink passes PAYSYNC_SINK_REAUTH_ATTEMPTS
        self.logins = 0

    # session -----------------------------------------------------------------------------------

    def open_session(self) -> None:
        """Log in now (at start-up): raises `AuthError` when Salesforce refuses the login for good (a
        configuration error: wrong host, flow or credentials); a login Salesforce could not answer is left
        for the first call."""
        with self._lock:
            try:
                self._login_locked(fatal=True)
            except CallError as exc:
                log.warning("salesforce login deferred", extra={"code": exc.decision.code, "error": exc.message})

    def _login_locked(self, fatal: bool = False) -> None:
        last: AuthError | None = None
        for attempt in range(4):
            try:
                token = self._auth.login()
                break
            except AuthError as exc:
                last = exc
                if not exc.retriable:
                    if fatal:
                        raise
                    log.error("salesforce login refused; pausing", extra={"error": str(exc)})
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
        """`POST /composite` (allOrNone false, in order): one API call; one result per subrequest, in order.

        "Composite Request Body": "When subrequests are collated, the processing speed is faster, but the order of
        execution is not guaranteed (unless there is an explicit dependency between the subrequests). If collation
        is disabled, then the subrequests are executed in the order in which they are received. [...] In API
        version 49.0 and later, the default value is true." Parents must be written before their children, so
        collation is turned off: that costs no call, while `@{ref}` dependencies between unrelated Collections
        subrequests cannot express "after" without referencing a field, and would fail the child when the parent
        subrequest fails (allOrNone false runs "the remaining subrequests that don't depend on the failed one").
        """
        resp = self.request("composite", "POST", "composite", json={
            "allOrNone": False, "collateSubrequests": False, "compositeRequest": subrequests})
        body = resp.json()
        results = body.get("compositeResponse") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(subrequests):
            raise CallError(Decision(Outcome.RETRY, "RESULT_MISMATCH"), resp.status_code,
                            f"composite answered {len(results or [])} results for {len(subrequests)} subrequests")
        return results

    @property
    def api_version(self) -> str:
        return self._s.salesforce_api_version

    def update_collection(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """sObject Collections update by record id (`PATCH /composite/sobjects`, `id` in each record).

        "Upsert Records Using sObject Collections": "Only external ids are supported. Don't use record ids."
        "Update Records Using sObject Collections": "Each object must contain an id field with a valid ID value."
        """
        resp = self.request("collections_update", "PATCH", "composite/sobjects", json=body)
        return list(resp.json())

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

    def probe_budget(self) -> Budget:
        """The cheapest call that shows the budget: `GET /services/data/vXX.X/` ("Resources by Version"), one API
        call, no permission beyond API Enabled.

        "Limit Info Header": "This response header is returned in each request to REST API (except for calls to the
        Versions URI, /, which do not count towards your org's limit)." The Versions URI would be free but carries
        no header, so the probe is the version's resource list: it costs one call, counted in `api_calls{kind=probe}`.
        """
        self.request("probe", "GET", "")
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

    def bulk_submit(self, sobject: str, external_id_field: str, csv_text: str) -> str:
        """Create a Bulk 2.0 upsert job, upload `csv_text`, close it (three calls); the job id. Salesforce then
        processes it in the background ("Bulk API 2.0 Limits and Allocations": seconds to minutes)."""
        job = self._bulk_step("POST", "jobs/ingest", json={
            "object": sobject, "operation": "upsert", "externalIdFieldName": external_id_field,
            "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF",
        }).json()
        base = f"jobs/ingest/{job['id']}"
        try:
            self._bulk_step("PUT", f"{base}/batches", data=csv_text, content_type="text/csv; charset=UTF-8")
            self._bulk_step("PATCH", base, json={"state": "UploadComplete"})
        except CallError:
            self._abort(base)
            raise
        return str(job["id"])

    def bulk_status(self, job_id: str) -> dict[str, Any]:
        """One poll of a job's JobInfo (one call)."""
        return dict(self._bulk_step("GET", f"jobs/ingest/{job_id}").json())

    def bulk_results(self, job_id: str, info: dict[str, Any], total: int) -> BulkResult:
        """The results of a finished job, reading no more CSVs than needed: none when every record succeeded,
        `failedResults` when some failed, `successfulResults` too only when some were not processed."""
        state = str(info.get("state", ""))
        result = BulkResult(job_id, state, str(info.get("errorMessage") or ""),
                            int(info.get("numberRecordsProcessed") or 0))
        if state != "JobComplete":
            return result
        failed = int(info.get("numberRecordsFailed") or 0)
        base = f"jobs/ingest/{job_id}"
        if failed:
            result.failed = parse_csv(self._bulk_step("GET", f"{base}/failedResults").text)
        if result.processed >= total:
            result.all_others_succeeded = True
        elif result.processed > failed:
            result.successful = parse_csv(self._bulk_step("GET", f"{base}/successfulResults").text)
        return result

    def bulk_abort(self, job_id: str) -> None:
        self._abort(f"jobs/ingest/{job_id}")

    def _abort(self, base: str) -> None:
        try:
            self.request("bulk", "PATCH", base, json={"state": "Aborted"})
        except CallError as exc:
            log.warning("could not abort bulk job", extra={"job": base, "error": exc.decision.code})
