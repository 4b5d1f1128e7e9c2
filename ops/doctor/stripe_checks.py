"""Stripe: the key (valid, its mode), the webhook endpoint for the receiver's URL (events, API version, status),
the webhook signing secrets, the connected accounts."""

from __future__ import annotations

from typing import Any

from producers.pollers.settings import PollerSettings
from producers.stripe_api import PINNED_API_VERSION
from producers.webhook.settings import WebhookSettings

from ops.doctor.report import Check, fail, ok, skip, warn
from ops.doctor.stripe_client import StripeCallError, StripeClient, error_message, key_mode
from ops.doctor.stripe_events import needed_event_types

SYSTEM = "stripe"
CREATE_FIX = "paysync stripe webhook-endpoint create --url {url}"


def _key_checks(client: StripeClient, api_key: str) -> tuple[list[Check], bool]:
    """(checks, key usable)."""
    mode = key_mode(api_key)
    if mode is None:
        return [fail(SYSTEM, "API key", "PAYSYNC_STRIPE_API_KEY is unset or not a secret (sk_) or restricted (rk_) key",
                     "set PAYSYNC_STRIPE_API_KEY (or _FILE) to a restricted key, Dashboard → Developers → API keys")], False
    status, body = client.get("/v1/events", {"limit": 1})
    if status != 200:
        fix = ("create a new restricted key and set PAYSYNC_STRIPE_API_KEY" if status == 401 else
               "give the restricted key read access to Events (and Balance, Payouts, the synced objects)")
        return [fail(SYSTEM, "API key", f"refused listing events (HTTP {status}) {error_message(body)}".strip(), fix)], False
    events = body.get("data") or []
    livemode = events[0].get("livemode") if events and isinstance(events[0], dict) else None
    if livemode is not None and livemode != (mode == "live"):
        return [fail(SYSTEM, "API key", f"a {mode} key, but its events say livemode={livemode}",
                     "use the key of the mode the data lives in")], False
    return [ok(SYSTEM, "API key", f"valid, {mode} mode" + (" (confirmed by an event's livemode)" if events else ""))], True


def _endpoint_check(endpoint: dict[str, Any], url: str) -> list[Check]:
    enabled = set(endpoint.get("enabled_events") or [])
    needed = set(needed_event_types())
    name = f"webhook endpoint {endpoint.get('id')}"
    checks: list[Check] = []
    if endpoint.get("status") != "enabled":
        checks.append(fail(SYSTEM, name, f"status {endpoint.get('status')}", "enable it: Dashboard → Developers → "
                           "Webhooks, or POST /v1/webhook_endpoints/{id} disabled=false"))
    missing = sorted(needed - enabled) if "*" not in enabled else []
    if missing:
        checks.append(fail(SYSTEM, f"{name} events", f"missing {len(missing)} event type(s): {', '.join(missing)}",
                           f"add them in the Dashboard, or register a new endpoint: {CREATE_FIX.format(url=url)} "
                           "(then delete the old one)"))
    else:
        extra = sorted(enabled - needed)
        checks.append(ok(SYSTEM, f"{name} events", f"all {len(needed)} needed" +
                         (f"; {len(extra)} more that paysync skips" if extra else "")))
    version = endpoint.get("api_version")
    if version != PINNED_API_VERSION:
        checks.append(warn(SYSTEM, f"{name} API version", f"{version or 'the account default'}, paysync pins "
                           f"{PINNED_API_VERSION}: events arrive in that shape, the pollers read the pinned one",
                           f"register it with --api-version {PINNED_API_VERSION}"))
    else:
        checks.append(ok(SYSTEM, f"{name} API version", str(version)))
    return checks


def _webhook_checks(client: StripeClient, url: str | None, webhook: WebhookSettings) -> list[Check]:
    checks: list[Check] = []
    secrets = [s.get_secret_value() for s in webhook.webhook_secrets]
    if not secrets or not all(s.startswith("whsec_") for s in secrets):
        checks.append(fail(SYSTEM, "webhook signing secrets", "PAYSYNC_WEBHOOK_SECRETS is unset or not whsec_…",
                           "set PAYSYNC_WEBHOOK_SECRETS to the endpoint's signing secret "
                           "(printed once by `paysync stripe webhook-endpoint create`)"))
    else:
        checks.append(ok(SYSTEM, "webhook signing secrets", f"{len(secrets)} configured"))
    if not url:
        checks.append(fail(SYSTEM, "webhook endpoint", "the receiver's public URL is not configured",
                           "set PAYSYNC_DOCTOR_WEBHOOK_URL (or --webhook-url) to https://<host>/webhooks/stripe"))
        return checks
    status, body = client.get("/v1/webhook_endpoints", {"limit": 100})
    if status != 200:
        checks.append(fail(SYSTEM, "webhook endpoint", f"cannot list webhook endpoints (HTTP {status})",
                           "give the key read access to Webhook Endpoints"))
        return checks
    matching = [e for e in body.get("data") or [] if isinstance(e, dict) and e.get("url") == url]
    if not matching:
        checks.append(fail(SYSTEM, "webhook endpoint", f"none registered for {url}", CREATE_FIX.format(url=url)))
        return checks
    checks.append(ok(SYSTEM, "webhook endpoint", f"{len(matching)} registered for {url}"))
    for endpoint in matching:
        checks.extend(_endpoint_check(endpoint, url))
    return checks


def _accounts_check(client: StripeClient, configured: list[str]) -> Check:
    status, body = client.get("/v1/accounts", {"limit": 100})
    if status != 200:
        detail = f"cannot list connected accounts (HTTP {status})"
        if configured:
            return fail(SYSTEM, "connected accounts", detail, "give the key Connect read access (Accounts)")
        return warn(SYSTEM, "connected accounts", detail + "; none configured, so paysync does not need them")
    listed = {a.get("id") for a in body.get("data") or [] if isinstance(a, dict)}
    unknown = [a for a in configured if a not in listed]
    if unknown and not body.get("has_more"):
        return fail(SYSTEM, "connected accounts", f"configured but not connected: {', '.join(unknown)}",
                    "fix PAYSYNC_STRIPE_ACCOUNTS (comma-separated acct_… ids of this platform's accounts)")
    return ok(SYSTEM, "connected accounts", f"{len(listed)} listed, {len(configured)} configured")


def check_stripe(poller: PollerSettings, webhook: WebhookSettings, webhook_url: str | None) -> list[Check]:
    """Every Stripe check, in order; later checks are skipped when the key does not work."""
    api_key = poller.stripe_api_key.get_secret_value()
    client = StripeClient(api_key, poller.stripe_api_base)
    try:
        checks, usable = _key_checks(client, api_key)
        if not usable:
            return checks + [skip(SYSTEM, "webhook endpoint and connected accounts", "the API key does not work")]
        checks += _webhook_checks(client, webhook_url, webhook)
        checks.append(_accounts_check(client, poller.stripe_accounts))
        return checks
    except StripeCallError as exc:
        return [fail(SYSTEM, "API reachable", str(exc), "check PAYSYNC_STRIPE_API_BASE and the network")]
    finally:
        client.close()
