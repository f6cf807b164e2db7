"""`uv run python -m bench`: every stage in one run, on a Kafka broker of its own, then a
table of figures, each next to the limit it is compared with, and the same as JSON in
bench/results/.

The broker is found as the tests find it (`infra.discovery.kafka`): $KAFKA_BOOTSTRAP_SERVERS,
else testcontainers, else a local KRaft node on the JVM. The run makes topics of its own and
deletes them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

from bench import audit, end_to_end, limit, rebuild
from bench.kafka_io import delete_topics
from bench.report import Figure, Run, table
from infra import discovery

RESULTS = Path(__file__).parent / "results"
STAGES = ("limit", "rebuild", "audit", "e2e")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events on the rebuild's topics (default 1,000,000; e.g. 100000 for a quick run)")
    parser.add_argument("--limit-records", type=int, default=200_000,
                        help="records in the raw produce/consume round trip (default 200,000)")
    parser.add_argument("--audit-small", type=int, default=1_000, help="events in the small audit store")
    parser.add_argument("--audit-large", type=int, default=None,
                        help="events in the large audit store (default: the same as --events)")
    parser.add_argument("--e2e-seconds", type=float, default=30.0,
                        help="seconds of each end-to-end phase: back to back, then at half rate (default 30)")
    parser.add_argument("--e2e-trajectories", type=int, default=200,
                        help="trajectories the end-to-end reports go to (default 200)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy each service during the back-to-back end-to-end phase, into DIR "
                             "(run with `uv run --group bench`)")
    parser.add_argument("--only", nargs="+", choices=STAGES, default=list(STAGES),
                        help="run only these stages (a profile of one stage, say)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    return parser.parse_args(argv)


def say(message: str, run: Run | None = None) -> None:
    """A progress line; with `run`, also noted with the load average, which says how much
    the machine was shared while the stage ran."""
    load = os.getloadavg()[0]
    print(f"[{time.strftime('%H:%M:%S')}] {message} (load {load:.1f})", file=sys.stderr, flush=True)
    if run is not None:
        run.settings.setdefault("load_average", {})[message.split(":")[0]] = round(load, 1)


@contextlib.asynccontextmanager
async def stage(run: Run, name: str) -> AsyncIterator[None]:
    """A stage that fails is a row saying why, not the loss of every other stage's figures."""
    try:
        yield
    except Exception as error:
        traceback.print_exc()
        run.add(Figure(name, "the stage failed", None, "", note=f"{type(error).__name__}: {error}"[:300]))


async def run_stages(args: argparse.Namespace, bootstrap: str, run: Run) -> None:
    round_trip = None
    if "limit" in args.only:
        async with stage(run, limit.STAGE):
            say(f"a. limit: raw produce and consume of {args.limit_records:,} records", run)
            figures = await limit.measure(bootstrap, args.limit_records)
            run.add(*figures.values())
            round_trip = figures["round_trip"].value
    if "rebuild" in args.only:
        async with stage(run, rebuild.STAGE):
            say(f"b. rebuild: loading {args.events:,} events onto three topics")
            topics, republished, load_s = await rebuild.load(bootstrap, args.events)
            run.settings["rebuild_load_seconds"] = round(load_s, 1)
            try:
                say(f"b. rebuild: loaded in {load_s:.0f} s; consume + decode, then the rebuild itself", run)
                run.add(*(await rebuild.measure(bootstrap, topics, args.events, republished)).values())
            finally:
                await delete_topics(bootstrap, topics)
    if "audit" in args.only:
        async with stage(run, audit.STAGE):
            large = args.audit_large or args.events
            say(f"c. audit replay: stores of {args.audit_small:,} and {large:,} events", run)
            run.add(*(await asyncio.to_thread(audit.measure, args.audit_small, large)).values())
    if "e2e" in args.only:
        async with stage(run, end_to_end.STAGE):
            say(f"d. end to end: four services, {args.e2e_trajectories} trajectories, "
                f"{args.e2e_seconds:.0f} s back to back and {args.e2e_seconds:.0f} s at half rate", run)
            run.add(*(await end_to_end.measure(bootstrap, round_trip, trajectories=args.e2e_trajectories,
                                               seconds=args.e2e_seconds, profile=args.profile)).values())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    run = Run(settings={"events": args.events, "limit_records": args.limit_records,
                        "audit_small": args.audit_small, "audit_large": args.audit_large or args.events,
                        "e2e_seconds": args.e2e_seconds, "e2e_trajectories": args.e2e_trajectories,
                        "stages": args.only})
    started = time.perf_counter()
    say("starting Kafka (or using $KAFKA_BOOTSTRAP_SERVERS)")
    with discovery.kafka() as endpoint:
        run.settings["kafka"] = f"{discovery.broker_version(endpoint)} ({endpoint.kind})"
        asyncio.run(run_stages(args, endpoint.bootstrap_servers, run))
    run.seconds = round(time.perf_counter() - started, 1)
    say("end", run)
    path = run.write(args.results)
    loads = ", ".join(f"{stage} {load}" for stage, load in run.settings["load_average"].items())
    print(f"\nTweespoor benchmarks, {run.started}, {run.machine['cpus']} CPUs, "
          f"Kafka {run.settings['kafka']}, {run.seconds:.0f} s in total; load average: {loads}\n")
    print(table(run))
    print(f"\nJSON: {path}")
    return 0  # a target missed is a finding, shown in the table, not a failed command


if __name__ == "__main__":
    sys.exit(main())
