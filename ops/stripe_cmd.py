"""`paysync stripe webhook-endpoint create --url URL [--api-version V] [--connect]`: register the webhook endpoint
with exactly the event types paysync maps (`ops.doctor.stripe_events`, from `core.registry`).

Uses `PAYSYNC_STRIPE_API_KEY` / `PAYSYNC_STRIPE_API_BASE` (the pollers' settings); the key needs write access to
Webhook Endpoints, which the pollers' read-only restricted key does not have: run it once with a key that does
(`PAYSYNC_STRIPE_API_KEY=sk_… paysync stripe webhook-endpoint create …`). The endpoint's signing secret, which
Stripe returns only at creation ("The endpoint's secret ... Only returned at creation.", docs.stripe.com "The
Webhook Endpoint object"), is printed once to stdout and never logged.
"""

from __future__ import annotations

import argparse
import sys

from producers.pollers.settings import PollerSettings
from producers.stripe_api import PINNED_API_VERSION

from ops.doctor.stripe_client import StripeCallError, StripeClient, error_message
from ops.doctor.stripe_events import needed_event_types


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync stripe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="resource", required=True)
    endpoint = sub.add_parser("webhook-endpoint", help="Stripe webhook endpoints")
    actions = endpoint.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register the receiver's URL with the events paysync maps")
    create.add_argument("--url", required=True, help="the receiver's public URL, e.g. https://host/webhooks/stripe")
    create.add_argument("--api-version", default=PINNED_API_VERSION, help=f"events' API version (default: "
                        f"{PINNED_API_VERSION}, the version paysync pins)")
    create.add_argument("--connect", action="store_true", help="a Connect endpoint (events of connected accounts)")
    create.add_argument("--description", default="paysync webhook receiver")
    return p


def create_endpoint(url: str, api_version: str, connect: bool, description: str) -> int:
    """POST /v1/webhook_endpoints; prints the id, the events and (once) the signing secret."""
    settings = PollerSettings()
    client = StripeClient(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base)
    events = needed_event_types()
    form = [("url", url), ("api_version", api_version), ("description", description)]
    form += [(f"enabled_events[{i}]", e) for i, e in enumerate(events)]
    if connect:
        form.append(("connect", "true"))
    try:
        status, body = client.post("/v1/webhook_endpoints", form)
    except StripeCallError as exc:
        sys.stderr.write(f"paysync stripe: {exc}\n")
        return 1
    finally:
        client.close()
    if status != 200:
        sys.stderr.write(f"paysync stripe: Stripe refused the endpoint (HTTP {status}) {error_message(body)}\n")
        return 1
    sys.stdout.write(
        f"created webhook endpoint {body.get('id')} for {body.get('url')} (API version {body.get('api_version')}, "
        f"{len(body.get('enabled_events') or [])} event types)\n\n"
        f"Its signing secret, shown this once (Stripe does not show it again):\n\n    {body.get('secret')}\n\n"
        "Give it to the receiver: PAYSYNC_WEBHOOK_SECRETS=<that secret> (or PAYSYNC_WEBHOOK_SECRETS_FILE=<a file "
        "holding it>; while rotating, both secrets comma-separated), then run `paysync doctor`.\n")
    return 0


def main(argv: list[str]) -> int:
    """`paysync stripe …`."""
    args = _parser().parse_args(argv)
    return create_endpoint(args.url, args.api_version, args.connect, args.description)
