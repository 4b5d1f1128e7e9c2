"""`paysync reconcile`: compare Salesforce with Stripe object by object and field by field.

Exit status: 0 when Salesforce matches Stripe, 1 on drift, 2 when the comparison could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field, SecretStr

from paysync.settings import COMPOSED_CONFIG, KafkaConnection, PaysyncSettings, TopicSettings
from sinks.settings import SalesforceSettings


class ReconcileSettings(PaysyncSettings):
    """Where the truth comes from, and the parts it shares with the sink: the Salesforce connection, and the Kafka
    connection and topic naming `--repair` republishes through."""

    model_config = COMPOSED_CONFIG

    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings, description="the sink's login")
    kafka: KafkaConnection = Field(default_factory=KafkaConnection, description="the shared Kafka connection")
    topics: TopicSettings = Field(default_factory=TopicSettings, description="the shared topic naming")

    stripe_api_key: SecretStr | None = Field(default=None, description="Stripe secret key (list endpoints)")
    stripe_api_base: str = Field(default="https://api.stripe.com", description="Stripe API base URL")
    stripe_accounts: list[str] = Field(default_factory=list, description="Connect accounts to reconcile too")


def _timestamp(text: str | None) -> int | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())


def main(argv: list[str]) -> int:
    """Run a reconciliation and print the report."""
    p = argparse.ArgumentParser(prog="paysync reconcile", description=__doc__)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--simulator", metavar="URL", help="take Stripe's truth from the simulator at URL")
    src.add_argument("--truth-file", type=Path, help="take Stripe's truth from a JSON-lines file")
    p.add_argument("--since", help="only objects created at or after (ISO date/time, UTC)")
    p.add_argument("--until", help="only objects created before (ISO date/time, UTC)")
    p.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    p.add_argument("--repair", action="store_true", help="republish drifted records through the sink's topic")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from ops.reconcile import engine, stripe_side
    from ops.reconcile.report import render_text
    from core.config import mapping_config

    settings = ReconcileSettings()
    since, until = _timestamp(args.since), _timestamp(args.until)
    try:
        if args.simulator:
            truth = stripe_side.truth_from_simulator(args.simulator)
        elif args.truth_file:
            truth = stripe_side.truth_from_file(args.truth_file)
        else:
            if settings.stripe_api_key is None:
                print("paysync reconcile: give --simulator, --truth-file or PAYSYNC_STRIPE_API_KEY", file=sys.stderr)
                return 2
            import stripe

            client = stripe.StripeClient(settings.stripe_api_key.get_secret_value(),
                                         base_addresses={"api": settings.stripe_api_base})
            truth = list(stripe_side.truth_from_stripe(client, [None, *settings.stripe_accounts], since))
        reader = engine.salesforce_reader(settings.salesforce)
        started = time.monotonic()
        report = engine.reconcile(truth, reader, mapping_config(), since, until,
                                  progress=not args.no_progress and sys.stderr.isatty())
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator, not a traceback
        print(f"paysync reconcile: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    report["seconds"] = round(time.monotonic() - started, 2)
    if args.repair and not report["summary"]["clean"]:
        from confluent_kafka import Producer

        from paysync.codec import AvroCodec

        producer = Producer({**settings.kafka.confluent_config(), "enable.idempotence": True, "acks": "all"})
        report["repaired"] = engine.repair(report, AvroCodec(settings.kafka.schema_registry_url), producer,
                                           settings.topics.prefix)
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    if args.json:
        print(json.dumps(public, indent=2, default=str))
    else:
        print(render_text(public))
        if "repaired" in public:
            print(f"\nrepair: republished {public['repaired']} upsert(s) to the sink's topic; run reconcile again "
                  "once the sink has caught up")
    return 0 if report["summary"]["clean"] else 1
