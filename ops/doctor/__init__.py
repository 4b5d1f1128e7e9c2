"""`paysync doctor [--json] [--webhook-url URL] [--only salesforce,stripe,kafka] [--salesforce-project DIR]`:
checks a configured deployment end to end and prints a checklist with the fix for each failure.

It reads the settings classes the components read (`sinks.settings.SalesforceSettings`, `producers.pollers.settings`,
`producers.webhook.settings`, `paysync.settings`, `core.config.mapping_config`), so it checks what they will use.
Exit status 1 when any check fails, 2 on bad arguments; secrets are never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import Field, ValidationError

from core.config import MappingSettings, mapping_config
from paysync.paths import SALESFORCE_PROJECT_DIR
from paysync.settings import ConfigError, KafkaConnection, PaysyncSettings, TopicSettings
from producers.pollers.settings import PollerSettings
from producers.webhook.settings import WebhookSettings
from sinks.settings import SalesforceSettings
from streams.settings import StreamSettings

from ops.doctor.kafka_checks import check_kafka
from ops.doctor.report import Check, exit_status, render_json, render_text
from ops.doctor.sf_checks import check_salesforce
from ops.doctor.stripe_checks import check_stripe

SYSTEMS = ("salesforce", "stripe", "kafka")


class DoctorSettings(PaysyncSettings):
    """`PAYSYNC_DOCTOR_*`: what only the doctor needs to know."""

    doctor_webhook_url: str | None = Field(default=None, description="the receiver's public URL Stripe posts to")
    doctor_salesforce_project: Path = Field(default=SALESFORCE_PROJECT_DIR, description="the SFDX project folder")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync doctor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print the checklist as JSON")
    p.add_argument("--webhook-url", default=None, help="overrides PAYSYNC_DOCTOR_WEBHOOK_URL")
    p.add_argument("--salesforce-project", type=Path, default=None, help="overrides PAYSYNC_DOCTOR_SALESFORCE_PROJECT")
    p.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated subset of " + ", ".join(SYSTEMS))
    return p


def run_checks(systems: list[str], doctor: DoctorSettings, webhook_url: str | None, project: Path) -> list[Check]:
    """The checklist of `systems`, each read from its components' settings (built here, once)."""
    checks: list[Check] = []
    if "salesforce" in systems:
        checks += check_salesforce(SalesforceSettings(), mapping_config(MappingSettings()), project)
    if "stripe" in systems:
        checks += check_stripe(PollerSettings(), WebhookSettings(), webhook_url or doctor.doctor_webhook_url)
    if "kafka" in systems:
        stream = StreamSettings()  # its payout join and changelogs: checked at its start-up too
        checks += check_kafka(KafkaConnection(), TopicSettings(), [stream.payout_join_topic, *stream.changelog_topics])
    return checks


def main(argv: list[str]) -> int:
    """Run the checks; print the checklist; 0 when none failed."""
    args = _parser().parse_args(argv)
    systems = [s.strip() for s in args.only.split(",") if s.strip()]
    if not systems or set(systems) - set(SYSTEMS):
        sys.stderr.write(f"paysync doctor: --only takes {', '.join(SYSTEMS)}\n")
        return 2
    try:
        doctor = DoctorSettings()
        checks = run_checks(systems, doctor, args.webhook_url, args.salesforce_project or doctor.doctor_salesforce_project)
    except (ValidationError, ConfigError) as exc:
        sys.stderr.write(f"paysync doctor: invalid configuration: {exc}\n")
        return 2
    sys.stdout.write(render_json(checks) if args.json else render_text(checks))
    return exit_status(checks)
