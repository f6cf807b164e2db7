"""Intake's composition root: the one place where its parts are wired."""

from __future__ import annotations

import datetime as dt
import logging
import os

from contracts.access import Credentials
from contracts.clock import installation_clock
from contracts.municipalities import MUNICIPALITIES
from contracts.rounds import in_thread, run_rounds
from contracts.runtime import Service, Settings, serve
from contracts.service import store_env
from contracts.topics import ACCESS
from contracts.web.health import readiness
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig

log = logging.getLogger(__name__)

DEVELOPMENT_KEY = "development-only-pseudonym-key"


def config_from_env(env: dict[str, str]) -> IntakeConfig:
    key = env.get("INTAKE_PSEUDONYM_KEY")
    if not key:
        log.warning("pseudonym_key_missing: using the development key; set INTAKE_PSEUDONYM_KEY")
    focus2move = env.get("INTAKE_FOCUS2MOVE_MUNICIPALITIES", "alkmaar")
    return IntakeConfig(
        pseudonym_key=(key or DEVELOPMENT_KEY).encode(),
        focus2move_municipalities=frozenset(m for m in focus2move.split(",") if m),
        lbu_response_weeks=int(env.get("INTAKE_LBU_RESPONSE_WEEKS", "13")),
        esf_retention_until=dt.date.fromisoformat(esf) if (esf := env.get("INTAKE_ESF_RETENTION_UNTIL")) else None,
    )


def build(settings: Settings, env: dict[str, str] | None = None) -> Service:
    env = dict(os.environ if env is None else env)
    # "Today" for the LBU timer, retention and the "not in the future" checks is the
    # installation's clock (`contracts.clock`); events keep their real recorded time.
    app = IntakeApplication(store_env(settings.database_url), config=config_from_env(env),
                            clock=installation_clock(env).today)
    interval = float(env.get("INTAKE_TIMER_SECONDS", "60"))

    credentials = Credentials.from_env(env)
    api = create_api(app, credentials)
    ready = readiness(api)

    def mark_unknown_destinations() -> None:
        """Refused job offers past their deadline join the unknown-destination cohort."""
        if marked := app.mark_unknown_destinations(MUNICIPALITIES):
            log.info("lbu_destination_unknown", extra={"offers": marked})

    def erase_expired() -> None:
        """Erases, on its own, the people whose files are past their retention."""
        if erased := app.erase_expired():
            log.info("retention_erased", extra={"people": erased})

    async def lbu_timer() -> None:
        await run_rounds(in_thread(mark_unknown_destinations), name="lbu_timer", interval=interval,
                         readiness=ready)

    async def retention() -> None:
        await run_rounds(in_thread(erase_expired), name="retention",
                         interval=float(env.get("INTAKE_RETENTION_SECONDS", "86400")), readiness=ready)

    return Service(settings=settings, app=app, api=api,
                   publishes_to=ACCESS["intake"].publishes, translate=app.integration_events,
                   consumes_from=ACCESS["intake"].consumes, background=(lbu_timer, retention),
                   audit_credentials=credentials)


def cli() -> None:
    serve(build(Settings.from_env("intake")))


if __name__ == "__main__":
    cli()
