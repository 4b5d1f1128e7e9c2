"""The read API under `/v1`: events, balance transactions, payouts (list + retrieve) and retrieve (and list)
for charges, payment intents, refunds, disputes, invoices and customers. API-key auth, a token-bucket rate
limit answering 429, request counting, Stripe-style paging (`limit`, `starting_after`, `ending_before`).

`Stripe-Account: acct_…` scopes a request to a connected account, as in Stripe; so does `Stripe-Context: acct_…`
(issue 15: stripe-python 16.1 sends a thin event's `context` as `Stripe-Context` when it fetches the related
object, a v1 URL, `_api_requestor.py`: `headers["Stripe-Context"] = str(stripe_context)`). A request made as a
connected account that deauthorized the platform is refused with 403 (`connect.py`). Connected accounts are
listed by `GET /v1/accounts`; thin events are retrieved by `GET /v2/core/events/{id}` (`thin.py`).
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import bad_param, json_response, missing, rate_limited, stripe_error, unauthorized
from .records import dumps
from .store import PLATFORM, Page, Store
from .visibility import Visibility

EVENTS_WINDOW = 30 * 86400
_RESOURCES = {"charges": "charge", "payment_intents": "payment_intent", "refunds": "refund", "disputes": "dispute",
              "invoices": "invoice", "customers": "customer", "payouts": "payout", "invoice_payments": "invoice_payment"}
# List filters on a top-level field, per resource (stripe-python `InvoicePaymentListParams.invoice`: "The identifier
# of the invoice whose payments to return.").
_FIELD_FILTERS = {"invoice_payments": ("invoice",)}
# `GET /v1/balance_transactions?payout=` of a manual payout: the 400 Stripe answers (reported in
# proudcity/wp-proudcity#993); the reference's `payout` parameter: "For automatic Stripe payouts only, only returns
# transactions that were paid out on the specified payout ID."; docs "Payout reconciliation": "You control the
# timing and amount of manual payouts, so Stripe can't identify which transactions are included in each payout."
MANUAL_PAYOUT_FILTER_MESSAGE = "Balance transaction history can only be filtered on automatic transfers, not manual."


class TokenBucket:
    """`rate` requests per second, bursts up to `rate`; `rate <= 0` means unlimited."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Spend one token; False when none is left."""
        if self.rate <= 0:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class ReadApi:
    """Handlers of `/v1/*` over a `Store`."""

    def __init__(self, store: Store, api_key: str, rate_limit: float = 0.0) -> None:
        self.store = store
        self.api_key = api_key
        self.bucket = TokenBucket(rate_limit)
        self.counts: Counter[str] = Counter()
        self.by_account: Counter[tuple[str, str]] = Counter()  # (account, endpoint label): `/_sim/stats/accounts`
        self.visibility = Visibility()  # POLLER hook (issue 15): off until `/_sim/config` sets `visibility_max_delay_s`
        self._lock = threading.Lock()

    def set_rate_limit(self, rate: float) -> None:
        """Change the rate limit (requests/s; 0 = none)."""
        self.bucket = TokenBucket(rate)

    def routes(self) -> list[Route]:
        """Starlette routes of the read API."""
        return [
            Route("/v1/events", self._wrap("events.list", self.list_events)),
            Route("/v1/events/{id}", self._wrap("events.retrieve", self.retrieve_event)),
            Route("/v1/balance_transactions", self._wrap("balance_transactions.list", self.list_txns)),
            Route("/v1/balance_transactions/{id}", self._wrap("balance_transactions.retrieve", self.retrieve_txn)),
            Route("/v1/accounts", self._wrap("accounts.list", self.list_accounts)),
            Route("/v1/accounts/{id}", self._wrap("accounts.retrieve", self.retrieve_account)),
            Route("/v2/core/events/{id}", self._wrap("v2.core.events.retrieve", self.retrieve_thin_event)),
            Route("/v1/{resource}", self._wrap(None, self.list_objects)),
            Route("/v1/{resource}/{id}", self._wrap(None, self.retrieve_object)),
        ]

    def _wrap(self, name: str | None, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            label = name or f"{request.path_params.get('resource')}.{'retrieve' if 'id' in request.path_params else 'list'}"
            account = request.headers.get("stripe-account") or request.headers.get("stripe-context") or PLATFORM
            with self._lock:
                self.counts[label] += 1
                self.counts["total"] += 1
                self.by_account[(account, label)] += 1
            key = _api_key(request)
            if key != self.api_key:
                return unauthorized(key)
            if not self.bucket.take():
                with self._lock:
                    self.counts["rate_limited"] += 1
                return rate_limited()
            if account in self.store.revoked:
                return _revoked(key or "", account)
            response: Response = handler(request, account)
            return response
        return endpoint

    # -- events -------------------------------------------------------------------------------------------
    def list_events(self, request: Request, account: str) -> Response:
        q = request.query_params
        try:
            paging = _paging(q)
            created = _created(q)
        except ValueError as exc:
            return bad_param(str(exc), exc.args[1] if len(exc.args) > 1 else "limit")
        types = [v for k, v in q.multi_items() if k == "types[]" or (k.startswith("types[") and k[6:-1].isdigit())]
        types = types or ([q["type"]] if "type" in q else [])
        if len(types) > 20:
            return bad_param("types[] accepts at most 20 types", "types")
        floor = int(time.time()) - EVENTS_WINDOW
        created["gte"] = max(created.get("gte", floor), floor)
        success = q.get("delivery_success")
        delivery = None if success is None else success.lower() == "true"
        page = self.store.list_events(account, types=types, created=_ops(created), delivery_success=delivery,
                                      limit=paging[0], starting_after=paging[1], ending_before=paging[2])
        if page is not None:  # POLLER hook (issue 15): entries listed late on purpose, `visibility.py`
            page.bodies = self.visibility.filter(page.bodies)
        return _list_response(page, "/v1/events", paging, "event")

    def retrieve_event(self, request: Request, account: str) -> Response:
        body = self.store.get("events", request.path_params["id"], account)
        return json_response(body) if body else missing("event", request.path_params["id"])

    # -- balance transactions -----------------------------------------------------------------------------
    def list_txns(self, request: Request, account: str) -> Response:
        q = request.query_params
        try:
            paging = _paging(q)
            created = _created(q)
        except ValueError as exc:
            return bad_param(str(exc), exc.args[1] if len(exc.args) > 1 else "limit")
        payout = q.get("payout")
        if payout is not None:
            payout_body = self.store.get("objects", payout, account, "payout")
            if payout_body is None:
                return missing("payout", payout)
            if '"automatic":false' in payout_body:
                return stripe_error(400, "invalid_request_error", MANUAL_PAYOUT_FILTER_MESSAGE, param="payout")
        page = self.store.list_txns(account, payout=payout, txn_type=q.get("type"), created=_ops(created),
                                    limit=paging[0], starting_after=paging[1], ending_before=paging[2])
        # POLLER hook (issue 15): range lists late on purpose (`visibility.py`), but never a `?payout=` list: the
        # Payout object's `reconciliation_status` ("If `completed`, you can use the Balance Transactions API to list
        # all balance transactions that are paid out in this payout"; docs "Payout reconciliation") makes that list
        # complete once reconciled, and before that it is partial by design (`story_payouts.py`).
        if page is not None and payout is None:
            page.bodies = self.visibility.filter(page.bodies)
        return _list_response(page, "/v1/balance_transactions", paging, "balance_transaction")

    def retrieve_txn(self, request: Request, account: str) -> Response:
        body = self.store.get("txns", request.path_params["id"], account)
        return json_response(body) if body else missing("balance_transaction", request.path_params["id"])

    # -- connected accounts and thin events (issue 15) ------------------------------------------------------
    def list_accounts(self, request: Request, account: str) -> Response:
        """'List all connected accounts': "Returns a list of accounts connected to your platform via Connect. If
        you're not a platform, the list is empty." (so asked as a connected account, it is empty)."""
        try:
            paging = _paging(request.query_params)
        except ValueError as exc:
            return bad_param(str(exc), exc.args[1] if len(exc.args) > 1 else "limit")
        page = (self.store.list_accounts(paging[0], paging[1], paging[2]) if account == PLATFORM
                else Page([], False))
        return _list_response(page, "/v1/accounts", paging, "account")

    def retrieve_account(self, request: Request, account: str) -> Response:
        body = self.store.get_account(request.path_params["id"]) if account == PLATFORM else None
        return json_response(body) if body else missing("account", request.path_params["id"])

    def retrieve_thin_event(self, request: Request, account: str) -> Response:
        """`GET /v2/core/events/{id}` of a thin event, in the context (`Stripe-Context`) it belongs to."""
        body = self.store.get("v2_events", request.path_params["id"], account)
        return json_response(body) if body else missing("v2.core.event", request.path_params["id"])

    # -- other objects ------------------------------------------------------------------------------------
    def list_objects(self, request: Request, account: str) -> Response:
        resource = request.path_params["resource"]
        if resource not in _RESOURCES:
            return _unknown_url(request)
        q = request.query_params
        try:
            paging = _paging(q)
            created = _created(q)
        except ValueError as exc:
            return bad_param(str(exc), exc.args[1] if len(exc.args) > 1 else "limit")
        fields = {name: q[name] for name in _FIELD_FILTERS.get(resource, ()) if q.get(name)}
        page = self.store.list_objects(account, _RESOURCES[resource], created=_ops(created), limit=paging[0],
                                       starting_after=paging[1], ending_before=paging[2], fields=fields)
        return _list_response(page, f"/v1/{resource}", paging, _RESOURCES[resource])

    def retrieve_object(self, request: Request, account: str) -> Response:
        resource = request.path_params["resource"]
        if resource not in _RESOURCES:
            return _unknown_url(request)
        object_id = request.path_params["id"]
        body = self.store.get("objects", object_id, account, _RESOURCES[resource])
        if body and resource == "invoices" and "payments" in _expand(request.query_params):
            body = self._with_payments(body, object_id, account)
        return json_response(body) if body else missing(_RESOURCES[resource], object_id)

    def _with_payments(self, body: str, invoice_id: str, account: str) -> str:
        """The invoice with its includable `payments` list (stripe-python `Invoice.payments`: "Payments for this
        invoice"), as `expand[]=payments` returns it: the first page of its invoice payments."""
        page = self.store.list_objects(account, "invoice_payment", created={}, limit=10, starting_after=None,
                                       ending_before=None, fields={"invoice": invoice_id})
        assert page is not None  # no cursor given
        payments = (f'{{"object":"list","data":[{",".join(page.bodies)}],"has_more":{dumps(page.has_more)},'
                    f'"url":"/v1/invoice_payments?invoice={invoice_id}"}}')
        return body[:-1] + f',"payments":{payments}}}'


def _revoked(key: str, account: str) -> Response:
    """A request as an account that deauthorized the platform: its access is gone (`connect.py`)."""
    shown = f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "***"
    return stripe_error(403, "invalid_request_error", f"The provided key '{shown}' does not have access to account "
                        f"'{account}' (or that account does not exist). Application access may have been revoked.",
                        "account_invalid")


def _expand(q: Any) -> list[str]:
    return [v for k, v in q.multi_items() if k == "expand[]" or (k.startswith("expand[") and k[7:-1].isdigit())]


def _unknown_url(request: Request) -> Response:
    from .errors import stripe_error

    return stripe_error(404, "invalid_request_error",
                        f"Unrecognized request URL (GET: {request.url.path}).")


def _api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if auth.lower().startswith("basic "):
        try:
            return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        except ValueError:
            return None
    return None


def _paging(q: Any) -> tuple[int, str | None, str | None]:
    raw = q.get("limit", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ValueError("Invalid integer: limit must be between 1 and 100", "limit")
    return int(raw), q.get("starting_after") or None, q.get("ending_before") or None


def _created(q: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    if "created" in q:
        value = q["created"]
        if not value.lstrip("-").isdigit():
            raise ValueError(f"Invalid integer: {value}", "created")
        out["gte"] = out["lte"] = int(value)
    for op in ("gt", "gte", "lt", "lte"):
        value = q.get(f"created[{op}]")
        if value is not None:
            if not value.lstrip("-").isdigit():
                raise ValueError(f"Invalid integer: {value}", f"created[{op}]")
            out[op] = int(value)
    return out


def _ops(created: dict[str, int]) -> dict[str, int]:
    return {{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[k]: v for k, v in created.items()}


def _list_response(page: Page | None, url: str, paging: tuple[int, str | None, str | None], kind: str) -> Response:
    if page is None:
        cursor = paging[1] or paging[2] or ""
        return missing(kind, cursor)
    body = f'{{"object":"list","data":[{",".join(page.bodies)}],"has_more":{dumps(page.has_more)},"url":"{url}"}}'
    return json_response(body)
