"""Coaching's composition root: the one place where its parts are wired."""

from __future__ import annotations

import os

from contracts.access import Credentials
from contracts.clock import installation_clock
from contracts.runtime import Service, Settings, serve
from contracts.service import store_env
from contracts.topics import ACCESS
from contracts.web.health import readiness
from coaching.api import create_api
from coaching.application import CoachingApplication
from coaching.clock import Clock
from coaching.integration import integration_events
from coaching.policy import Policies
from coaching.scheduler import Scheduler


def build(settings: Settings, env: dict[str, str] | None = None, *,
          clock: Clock | None = None) -> Service:
    """`COACHING_SCHEDULER_SECONDS` (default 60) sets how often the scheduler looks at the
    plans; the check-in weeks and grace days come from `coaching.policy`. "Today" (due
    dates, the scheduler, "not in the future") is the installation's clock
    (`contracts.clock`, `TWEESPOOR_CLOCK_*`) unless `clock` is given."""
    env = dict(os.environ if env is None else env)
    app = CoachingApplication(store_env(settings.database_url), policies=Policies.from_env(env),
                              clock=clock or installation_clock(env).today)
    credentials = Credentials.from_env(env)
    api = create_api(app, credentials)
    scheduler = Scheduler(app, interval_seconds=float(env.get("COACHING_SCHEDULER_SECONDS", "60")),
                          readiness=readiness(api))
    return Service(settings=settings, app=app, api=api,
                   publishes_to=ACCESS["coaching"].publishes, translate=integration_events,
                   consumes_from=ACCESS["coaching"].consumes, background=(scheduler.run,),
                   audit_credentials=credentials)


def cli() -> None:
    serve(build(Settings.from_env("coaching")))


if __name__ == "__main__":
    cli()
