"""The trajectory service's composition root."""

from __future__ import annotations

from contracts.runtime import Service, Settings, serve
from contracts.service import store_env
from contracts.topics import INTAKE_EVENTS, TRAJECTORY_EVENTS
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication, integration_events


def build(settings: Settings) -> Service:
    app = TrajectoryApplication(store_env(settings.database_url))
    return Service(settings=settings, app=app, api=create_api(app),
                   publishes_to=TRAJECTORY_EVENTS, translate=integration_events,
                   consumes_from=(INTAKE_EVENTS,))


def cli() -> None:
    serve(build(Settings.from_env("trajectory")))


if __name__ == "__main__":
    cli()
