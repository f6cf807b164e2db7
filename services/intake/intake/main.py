"""Intake's composition root: the one place where its parts are wired."""

from __future__ import annotations

import logging
import os

from contracts.runtime import Service, Settings, serve
from contracts.service import store_env
from contracts.topics import INTAKE_EVENTS
from intake.api import create_api
from intake.application import IntakeApplication, integration_events

log = logging.getLogger(__name__)

DEVELOPMENT_KEY = "development-only-pseudonym-key"


def build(settings: Settings, pseudonym_key: bytes) -> Service:
    app = IntakeApplication(store_env(settings.database_url), pseudonym_key=pseudonym_key)
    return Service(settings=settings, app=app, api=create_api(app),
                   publishes_to=INTAKE_EVENTS, translate=integration_events)


def cli() -> None:
    key = os.environ.get("INTAKE_PSEUDONYM_KEY")
    if not key:
        log.warning("pseudonym_key_missing: using the development key; set INTAKE_PSEUDONYM_KEY")
    serve(build(Settings.from_env("intake"), (key or DEVELOPMENT_KEY).encode()))


if __name__ == "__main__":
    cli()
