"""`paysync emulate stripe …`: run the simulator server, or write a generated event stream offline.

  paysync emulate stripe [serve] --port 12111 --seed 7 [--webhook-url URL --webhook-secret whsec_… (repeat)]
        [--clock fixed|realtime] [--start-time ISO|unix] [--rate-limit 25] [--events N --rate R]
        [--truth-out FILE [--exit-when-done]] [--db FILE] [--knobs JSON]
  paysync emulate stripe generate --events 1000000 --seed 7 [--out FILE|-] [--start-time …]

Environment (read once): PAYSYNC_STRIPE_SIM_API_KEY (or _FILE), PAYSYNC_STRIPE_SIM_WEBHOOK_SECRETS (comma-
separated, or _FILE), PAYSYNC_STRIPE_SIM_WEBHOOK_URL. Flags win over the environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

from pydantic import SecretStr

from paysync.logs import setup_logging
from paysync.settings import PaysyncSettings

from .clock import parse_start_time
from .params import ScenarioParams
from .records import EventRecord
from .scenario import generate
from .server import Simulator, build_app
from .store import Store
from .truth import truth_lines
from .webhooks import DeliveryKnobs

log = logging.getLogger("emulators.stripe_simulator")


class StripeSimSettings(PaysyncSettings):
    """Secrets and endpoint of the simulator (env `PAYSYNC_STRIPE_SIM_*`)."""

    stripe_sim_api_key: SecretStr = SecretStr("sk_test_simulator")
    stripe_sim_webhook_secrets: SecretStr = SecretStr("whsec_simulator")
    stripe_sim_webhook_url: str | None = None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paysync emulate stripe", description="A stateful Stripe account simulator.")
    p.add_argument("mode", nargs="?", choices=("serve", "generate"), default="serve")
    p.add_argument("--port", type=int, default=12111)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--api-key", default=None, help="overrides PAYSYNC_STRIPE_SIM_API_KEY")
    p.add_argument("--webhook-url", default=None)
    p.add_argument("--webhook-secret", action="append", default=None, help="repeat for rotation (two v1 signatures)")
    p.add_argument("--clock", choices=("fixed", "realtime"), default="fixed")
    p.add_argument("--start-time", default=None, help="unix seconds or ISO-8601 (default: yesterday 00:00 UTC)")
    p.add_argument("--rate-limit", type=float, default=0.0, help="requests/s over /v1/* (0 = none)")
    p.add_argument("--events", type=int, default=None, help="generate this many events at start-up")
    p.add_argument("--rate", type=float, default=0.0, help="events/s for the start-up run (0 = as fast as possible)")
    p.add_argument("--truth-out", type=Path, default=None, help="write the truth export here when the run is done")
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temporary one)")
    p.add_argument("--knobs", default="{}", help="JSON: delivery knobs and ScenarioParams defaults")
    p.add_argument("--out", default="-", help="generate mode: JSON lines of events to this file ('-' = stdout)")
    return p


def main(argv: list[str]) -> int:
    """Entry point of `paysync emulate stripe`."""
    args = _parser().parse_args(argv)
    setup_logging()
    settings = StripeSimSettings()
    extra = json.loads(args.knobs)
    param_fields = {k: v for k, v in extra.items() if k in ScenarioParams.__dataclass_fields__}
    params = ScenarioParams(seed=args.seed, start_time=parse_start_time(args.start_time), clock=args.clock,
                            **param_fields)
    if args.mode == "generate":
        return _generate_offline(args, params)
    secrets = args.webhook_secret or [
        s for s in settings.stripe_sim_webhook_secrets.get_secret_value().split(",") if s]
    knob_fields = {k: v for k, v in extra.items() if k in DeliveryKnobs.__dataclass_fields__}
    knobs = DeliveryKnobs(webhook_url=args.webhook_url or settings.stripe_sim_webhook_url, webhook_secrets=secrets,
                          seed=args.seed, **{k: v for k, v in knob_fields.items() if k not in ("webhook_url",)})
    api_key = args.api_key or settings.stripe_sim_api_key.get_secret_value()
    sim = Simulator(Store(args.db), api_key, knobs, args.rate_limit, params)
    if args.events is not None:
        sim.start_run({"events": args.events, "rate": args.rate})
    return _serve(args, sim)


def _serve(args: argparse.Namespace, sim: Simulator) -> int:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(build_app(sim), host=args.host, port=args.port, log_level="warning",
                                           access_log=False))
    if args.truth_out:
        threading.Thread(target=_write_truth_when_done, args=(sim, args.truth_out, server, args.exit_when_done),
                         daemon=True).start()
    log.info("stripe simulator listening", extra={"port": args.port, "webhook_url": sim.knobs.webhook_url})
    try:
        server.run()
    finally:
        sim.stop()
    return 1 if sim.error else 0


def _write_truth_when_done(sim: Simulator, path: Path, server: object, exit_after: bool) -> None:
    while sim.runs == 0 or not sim.status()["done"]:
        time.sleep(0.2)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in truth_lines(sim.store):
            fh.write(line + "\n")
    tmp.replace(path)
    log.info("truth written", extra={"path": str(path)})
    if exit_after:
        server.should_exit = True  # type: ignore[attr-defined]


def _generate_offline(args: argparse.Namespace, params: ScenarioParams) -> int:
    if args.events is not None:
        params.events = args.events
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for record in generate(params):
            if isinstance(record, EventRecord):
                out.write(record.json + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
