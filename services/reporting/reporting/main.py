"""Reporting's composition root: it reads every event topic and publishes nothing.

`tweespoor-reporting` runs the service; `tweespoor-reporting rebuild` rebuilds every
read model from offset 0 beside the live ones and swaps them in; `tweespoor-reporting
audit timeline|as-of|check <trajectory>` asks the auditor's API.
"""

import argparse
import asyncio
import json
import os
import sys

import httpx

from contracts.access import Credentials
from contracts.clock import installation_clock
from contracts.runtime import Service, Settings, configure_logging, serve
from contracts.topics import ACCESS, EVENT_TOPICS
from reporting.api import create_api
from reporting.rebuild import MAX_WORKERS, rebuild
from reporting.store import ReportingStore


def build(settings: Settings, env: dict[str, str] | None = None) -> Service:
    env = dict(os.environ if env is None else env)
    store = ReportingStore(settings.database_url)
    services = {name: url for name in ("intake", "trajectory", "coaching")
                if (url := env.get(f"REPORTING_{name.upper()}_URL"))}
    # "Today" (the dashboard's default year, the SRG export's reference date) is the
    # installation's clock (`contracts.clock`); the access log keeps real time.
    api = create_api(store, Credentials.from_env(env), intake_url=env.get("REPORTING_INTAKE_URL"),
                     bootstrap_servers=settings.bootstrap_servers, service_urls=services,
                     today=installation_clock(env).today)
    return Service(settings=settings, app=store, api=api, consumes_from=ACCESS["reporting"].consumes)


def audit_cli(argv: list[str]) -> None:
    """`tweespoor-reporting audit timeline|as-of|check <trajectory>`: the auditor's API on
    the command line (with the auditor's own token, so the access log has it too)."""
    parser = argparse.ArgumentParser(prog="tweespoor-reporting audit")
    parser.add_argument("what", choices=("timeline", "as-of", "check"))
    parser.add_argument("trajectory_id")
    parser.add_argument("--source", choices=("kafka", "stores"), default="kafka")
    parser.add_argument("--valid", help="as-of: the date in the world (YYYY-MM-DD)")
    parser.add_argument("--known-at", help="as-of: what the system knew at (ISO date-time)")
    parser.add_argument("--url", default=os.environ.get("REPORTING_URL", "http://127.0.0.1:8004"))
    args = parser.parse_args(argv)
    token = os.environ.get("TWEESPOOR_TOKEN")
    if not token:
        raise SystemExit("set TWEESPOOR_TOKEN to an auditor's token")
    params = {"timeline": {"source": args.source}, "check": {},
              "as-of": {k: v for k, v in (("valid", args.valid), ("known_at", args.known_at)) if v}}[args.what]
    response = httpx.get(f"{args.url}/audit/trajectories/{args.trajectory_id}/{args.what}", params=params,
                         headers={"Authorization": f"Bearer {token}"}, timeout=60)
    print(json.dumps(response.json(), indent=2))
    if response.status_code != 200 or (args.what == "check" and not response.json()["agree"]):
        raise SystemExit(1)


def cli() -> None:
    if sys.argv[1:2] == ["audit"]:
        audit_cli(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="tweespoor-reporting", description=__doc__)
    parser.add_argument("command", nargs="?", choices=("serve", "rebuild"), default="serve")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that rebuild together, sharing the trajectories by key (default: "
                             f"one per partition, or per core, at most {MAX_WORKERS})")
    args = parser.parse_args()
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    settings = Settings.from_env("reporting")
    if args.command == "serve":
        serve(build(settings))
        return
    configure_logging()
    store = ReportingStore(settings.database_url)
    try:
        summary = asyncio.run(rebuild(store, settings.bootstrap_servers, EVENT_TOPICS, workers=args.workers))
    finally:
        store.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    cli()
