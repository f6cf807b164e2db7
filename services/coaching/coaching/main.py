"""Coaching's composition root."""

from __future__ import annotations

from coaching.api import create_api
from coaching.application import CoachingApplication, integration_events
from contracts.runtime import Service, Settings, serve
from contracts.service import store_env
from contracts.topics import COACHING_EVENTS, TRAJECTORY_EVENTS


def build(settings: Settings) -> Service:
    app = CoachingApplication(store_env(settings.database_url))
    return Service(settings=settings, app=app, api=create_api(app),
                   publishes_to=COACHING_EVENTS, translate=integration_events,
                   consumes_from=(TRAJECTORY_EVENTS,))


def cli() -> None:
    serve(build(Settings.from_env("coaching")))


if __name__ == "__main__":
    cli()
