"""Stripe's list endpoints with good manners: a client-side rate limiter, 429/5xx retried with
backoff and jitter, other 4xx surfaced once with the request id, the API version pinned.

The one error table for Stripe (`STRIPE_ERRORS`) maps an HTTP status to an Outcome. Every call is
counted in `paysync_stripe_api_requests_total{endpoint,status}` so calls per 1,000 events can be
reported. The base URL is injectable (the simulator, stripe-mock, or api.stripe.com).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from paysync import exact_json
from paysync.outcomes import Outcome, backoff_delay

log = logging.getLogger(__name__)

PINNED_API_VERSION = "2026-10-28.endive"  # stripe-python 16.1.0's version; recorded on every record

# status -> outcome: the single table deciding what a Stripe failure means for a poller.
STRIPE_ERRORS: dict[int, Outcome] = {
    400: Outcome.DEAD_LETTER,  # our request is wrong: surface once, do not hammer
    401: Outcome.PAUSE,  # bad/revoked key: nothing works until it is fixed
    402: Outcome.DEAD_LETTER,
    403: Outcome.PAUSE,
    404: Outcome.SKIP,  # the object (e.g. a payout) is gone
    409: Outcome.RETRY,
    429: Outcome.RETRY,  # rate limited
    500: Outcome.RETRY,
    502: Outcome.RETRY,
    503: Outcome.RETRY,
    504: Outcome.RETRY,
}


def outcome_for(status: int | None) -> Outcome:
    """What to do after a failed call with this HTTP status (None = no answer: network error)."""
    if status is None or status >= 500:
        return Outcome.RETRY
    return STRIPE_ERRORS.get(status, Outcome.DEAD_LETTER)


class StripeApiError(Exception):
    """A call failed for good (or retries ran out): status, request id and outcome included, never the key."""

    def __init__(self, endpoint: str, status: int | None, request_id: str | None, outcome: Outcome, message: str):
        super().__init__(f"{endpoint}: HTTP {status} ({outcome.value}) request {request_id}: {message}")
        self.endpoint, self.status, self.request_id, self.outcome = endpoint, status, request_id, outcome


class RateLimiter:
    """A token bucket: at most `rate` calls per second on average, bursts up to `burst`. Thread-safe."""

    def __init__(self, rate: float, burst: int = 5, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self.clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1 - 1e-9:  # float residue must not spin
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self.sleep(wait)


@dataclass
class Page:
    """One list page: the objects as dicts, their JSON as listed, whether more follow."""

    objects: list[dict[str, Any]]
    raw: list[str]
    has_more: bool


def compact_json(obj: Any) -> str:
    """`obj` as compact JSON; Decimals are written as the exact numbers they hold (`paysync.exact_json`)."""
    return exact_json.dumps(obj)


_COUNTERS: dict[int, Counter] = {}


def api_counter(registry: CollectorRegistry = REGISTRY) -> Counter:
    """`paysync_stripe_api_requests_total{endpoint,status}` in `registry` (created once per registry)."""
    key = id(registry)
    if key not in _COUNTERS:
        _COUNTERS[key] = Counter("paysync_stripe_api_requests_total", "Stripe API calls made, by endpoint and status",
                                 ["endpoint", "status"], registry=registry)
    return _COUNTERS[key]


class StripeApi:
    """Calls against `base_url` with `api_key`, rate limited and retried. One per process.

    Two limits hold at once ('Rate limits': "The basic rate limiter restricts the number of API requests per
    second as follows: Live mode: 100 operations - Sandbox: 25 operations" and "API endpoints have a default
    limit of 25 requests per second"; "Stripe treats each named API operation as a separate endpoint"): the
    account-wide bucket (`rate_per_s`) and one bucket per named operation (`endpoint_rate_per_s`).
    """

    def __init__(self, api_key: str, base_url: str = "https://api.stripe.com", *, rate_per_s: float = 20.0,
                 max_attempts: int = 6, api_version: str = PINNED_API_VERSION, timeout_s: float = 30.0,
                 registry: CollectorRegistry = REGISTRY, sleep: Callable[[float], None] = time.sleep,
                 endpoint_rate_per_s: float = 20.0) -> None:
        self.api_version = api_version
        self.max_attempts = max_attempts
        self.limiter = RateLimiter(rate_per_s, sleep=sleep)
        self.endpoint_rate_per_s = min(endpoint_rate_per_s, rate_per_s)
        self._endpoint_limiters: dict[str, RateLimiter] = {}
        self.sleep = sleep
        self.calls = api_counter(registry)
        self.calls_made = 0
        self.calls_by_endpoint: dict[str, int] = {}
        self._client = stripe.StripeClient(
            api_key, base_addresses={"api": base_url.rstrip("/")}, stripe_version=api_version,
            max_network_retries=0, http_client=stripe.RequestsClient(timeout=timeout_s),
        )

    def _acquire(self, endpoint: str) -> None:
        limiter = self._endpoint_limiters.get(endpoint)
        if limiter is None:
            limiter = self._endpoint_limiters.setdefault(endpoint, RateLimiter(self.endpoint_rate_per_s,
                                                                               sleep=self.sleep))
        limiter.acquire()
        self.limiter.acquire()

    def get_json(self, path: str, params: dict[str, Any], account: str | None = None,
                 endpoint: str | None = None) -> dict[str, Any]:
        """GET `path` with `params` (exact numbers as Decimal); StripeApiError when it cannot succeed.

        `endpoint` names the operation for the limits and the metrics (`/v1/charges/{id}`); default `path`.
        """
        endpoint = endpoint or path
        query = {k: v for k, v in params.items() if v is not None}
        if account:
            query["stripe_account"] = account
        for attempt in range(self.max_attempts):
            self._acquire(endpoint)
            self.calls_made += 1
            self.calls_by_endpoint[endpoint] = self.calls_by_endpoint.get(endpoint, 0) + 1
            try:
                response = self._client.raw_request("get", path, **query)
            except stripe.StripeError as exc:
                status = exc.http_status
                self.calls.labels(endpoint, str(status or "network")).inc()
                outcome = outcome_for(status)
                if outcome is Outcome.RETRY and attempt + 1 < self.max_attempts:
                    self.sleep(_retry_delay(attempt, exc))
                    log.info("stripe call retried", extra={"endpoint": endpoint, "status": status,
                                                           "request_id": exc.request_id})
                    continue
                raise StripeApiError(endpoint, status, exc.request_id, outcome, exc.user_message or str(exc)) from None
            self.calls.labels(endpoint, "200").inc()
            body: dict[str, Any] = json.loads(response.body, parse_float=Decimal)  # exchange rates stay exact
            return body
        raise AssertionError("unreachable")

    def list_page(self, path: str, params: dict[str, Any], account: str | None = None) -> Page:
        """GET one page of a list endpoint (`/v1/events` …); StripeApiError when it cannot succeed."""
        exact = self.get_json(path, params, account)
        objects = exact.get("data") or []
        return Page(objects=objects, raw=[compact_json(o) for o in objects], has_more=bool(exact.get("has_more")))

    def retrieve(self, path: str, account: str | None = None, endpoint: str | None = None) -> tuple[dict[str, Any], str]:
        """GET one object (`/v1/charges/ch_…`): (object, its compact JSON)."""
        obj = self.get_json(path, {}, account, endpoint)
        return obj, compact_json(obj)

    def list_all(self, path: str, params: dict[str, Any], account: str | None = None,
                 starting_after: str | None = None) -> Iterator[tuple[Page, str | None]]:
        """Every page newest-first (Stripe's order), following `starting_after`; yields (page, cursor after it)."""
        cursor = starting_after
        while True:
            page = self.list_page(path, {**params, "limit": 100, "starting_after": cursor}, account)
            cursor = page.objects[-1]["id"] if page.objects else cursor
            yield page, cursor
            if not page.has_more or not page.objects:
                return

    def list_newer(self, path: str, params: dict[str, Any], ending_before: str,
                   account: str | None = None) -> Iterator[Page]:
        """The objects listed after `ending_before` (newer), one page at a time, oldest page first.

        'Pagination': `ending_before` "defines your place in the list": the next call's `ending_before` is the
        first (newest) object of the page just received. Each page's objects stay newest first.
        """
        cursor = ending_before
        while True:
            page = self.list_page(path, {**params, "limit": 100, "ending_before": cursor}, account)
            if page.objects:
                cursor = page.objects[0]["id"]
                yield page
            if not page.has_more or not page.objects:
                return


def _retry_delay(attempt: int, exc: stripe.StripeError) -> float:
    """Backoff with jitter, at least the server's Retry-After."""
    delay = backoff_delay(attempt, base=0.5, cap=30.0)
    retry_after = (exc.headers or {}).get("retry-after")
    if retry_after and str(retry_after).isdigit():
        delay = max(delay, float(retry_after))
    return delay
