"""Reporting's composition root: it reads every event topic and publishes nothing.

`tweespoor-reporting` runs the service; `tweespoor-reporting rebuild` rebuilds every
read model from offset 0 beside the live ones and swaps them in.
"""

import argparse
import asyncio
import json
import os

from contracts.access import Credentials
from contracts.runtime import Service, Settings, configure_logging, serve
from contracts.topics import EVENT_TOPICS
from reporting.api import create_api
from reporting.rebuild import rebuild
from reporting.store import ReportingStore


def build(settings: Settings, env: dict[str, str] | None = None) -> Service:
    env = dict(os.environ if env is None else env)
    store = ReportingStore(settings.database_url)
    services = {name: url for name in ("intake", "trajectory", "coaching")
                if (url := env.get(f"REPORTING_{name.upper()}_URL"))}
    api = create_api(store, Credentials.from_env(env), intake_url=env.get("REPORTING_INTAKE_URL"),
                     bootstrap_servers=settings.bootstrap_servers, service_urls=services)
    return Service(settings=settings, app=store, api=api, consumes_from=EVENT_TOPICS)


def cli() -> None:
    parser = argparse.ArgumentParser(prog="tweespoor-reporting", description=__doc__)
    parser.add_argument("command", nargs="?", choices=("serve", "rebuild"), default="serve")
    args = parser.parse_args()
    settings = Settings.from_env("reporting")
    if args.command == "serve":
        serve(build(settings))
        return
    configure_logging()
    store = ReportingStore(settings.database_url)
    try:
        summary = asyncio.run(rebuild(store, settings.bootstrap_servers, EVENT_TOPICS))
    finally:
        store.close()
    print(json.dumps(summary))


if __name__ == "__main__":
    cli()
