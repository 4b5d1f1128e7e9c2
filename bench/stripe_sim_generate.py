"""Benchmark: how fast the Stripe simulator generates events, and its peak memory, streaming (no store).

    .venv/bin/python bench/stripe_sim_generate.py [--events 1000000] [--seed 1] [--out /dev/null]

Prints events, records, seconds, events/s and the peak resident set size (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import time

from emulators.stripe_simulator import EventRecord, ScenarioParams, generate


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mean-gap", type=float, default=0.3, help="scenario seconds between story arrivals")
    parser.add_argument("--out", default="/dev/null", help="write event JSON lines here")
    args = parser.parse_args()
    params = ScenarioParams(seed=args.seed, events=args.events, start_time=1_767_225_600, mean_gap=args.mean_gap)
    events = records = size = 0
    started = time.perf_counter()
    with open(args.out, "w", encoding="utf-8") as out:
        for record in generate(params):
            records += 1
            if isinstance(record, EventRecord):
                events += 1
                size += len(record.json)
                out.write(record.json)
                out.write("\n")
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events={events} records={records} seconds={elapsed:.1f} events_per_s={events / elapsed:,.0f} "
          f"json_mib={size / 2**20:,.0f} peak_rss_mib={peak_mib:,.0f}")


if __name__ == "__main__":
    main()
