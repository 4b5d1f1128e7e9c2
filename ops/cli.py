"""The `paysync` command: one subcommand per component or tool, each in its own module.

Each entry is `module:function`; the function takes the remaining arguments and returns an exit
status. Modules are imported only when their command runs, so `paysync kafka status` stays fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "kafka": ("ops.kafka_cmd:main", "start | stop | status the local Kafka broker"),
    "topics": ("ops.topics_cmd:main", "create paysync's topics (idempotent)"),
    "emulate": ("emulators.cli:main", "run the Salesforce emulator or the Stripe simulator"),
    "webhook": ("producers.webhook.cli:main", "the Stripe webhook receiver"),
    "poll": ("producers.pollers.cli:main", "the Stripe events and balance-transaction pollers"),
    "backfill": ("producers.backfill:main", "publish Stripe history as source=backfill records"),
    "stream": ("streams.cli:main", "a Faust stream worker (order guard, map, payout joins)"),
    "sink": ("sinks.cli:main", "the Salesforce sink consumer"),
    "run": ("ops.run:main", "start the pipeline's components from configuration"),
    "demo": ("ops.demo:main", "the whole pipeline on local defaults, ending with reconciliation"),
    "reconcile": ("ops.reconcile:main", "compare Salesforce with Stripe; --repair republishes drift"),
    "replay": ("ops.replay:main", "re-drive a topic from an offset or a time"),
    "dlq": ("ops.dlq:main", "list | show | replay | purge dead letters"),
    "chaos": ("ops.chaos:main", "fault-injection scenarios (one broker or a 3-node cluster) ending with reconcile"),
    "doctor": ("ops.doctor:main", "check a configured deployment end to end (Salesforce, Stripe, Kafka)"),
    "stripe": ("ops.stripe_cmd:main", "webhook-endpoint create: register the receiver with the events paysync maps"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: paysync COMMAND [ARGS...]\n\ncommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    """Dispatch `paysync COMMAND ARGS...`; returns the command's exit status."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        sys.stderr.write(f"paysync: unknown command {name!r}\n\n{_usage()}")
        return 2
    target = COMMANDS[name][0]
    module_name, func_name = target.split(":")
    module = importlib.import_module(module_name)
    try:
        return int(getattr(module, func_name)(rest) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
