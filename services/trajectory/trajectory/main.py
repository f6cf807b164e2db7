"""The trajectory service's composition root: the one place where its parts are wired.

Environment, beyond the shared settings (`contracts.runtime.Settings`) and
`TWEESPOOR_CREDENTIALS_FILE`:

    TRAJECTORY_TENDER_FILE             the tender's data file (default: the one shipped,
                                       data/tender-2005.toml); read on the first start only
    TRAJECTORY_PUBLIC_URL              where providers reach this API (the `dataref` of
                                       notifications); default http://<host>:<port>
    TRAJECTORY_ALLOW_HTTP_CALLBACKS    "1" lets providers register plain http callbacks
                                       (development and demos only)
    TRAJECTORY_WEBHOOK_MAX_ATTEMPTS    tries per delivery before it is dead-lettered (8)
    TRAJECTORY_WEBHOOK_FIRST_DELAY     seconds after the first failure, doubling (30)
    TRAJECTORY_WEBHOOK_MAX_DELAY       the longest wait between tries, seconds (3600)
    TRAJECTORY_WEBHOOK_TIMEOUT         seconds a receiver has to answer (10)
    TRAJECTORY_DESK_SECONDS            how often the assignment desk looks for work when
                                       this process recorded nothing new (1.0; what it
                                       records wakes the desk at once)
    TWEESPOOR_CLOCK_START, _ANCHOR, _SPEED
                                       the installation's clock (`contracts.clock`): the
                                       "today" of "lies in the future"; webhook deliveries
                                       and recorded times stay on real time
"""

from __future__ import annotations

import logging
import os

from contracts.access import Credentials
from contracts.clock import installation_clock
from contracts.rounds import in_thread, run_rounds
from contracts.runtime import Service, Settings, serve
from contracts.service import store_env
from contracts.topics import ACCESS
from contracts.web.health import readiness
from trajectory import tender
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication, TrajectoryConfig
from trajectory.delivery import WebhookSender
from trajectory.integration import published_events
from trajectory.usecases.desk import BATCH as DESK_BATCH
from trajectory.subscriptions import Backoff

log = logging.getLogger(__name__)

# After a commit wakes the desk, it waits this much for more before it looks, so that at
# load it looks five times a second (as when it polled), not once per commit.
DESK_SETTLE_SECONDS = 0.2


def config_from_env(settings: Settings, env: dict[str, str]) -> TrajectoryConfig:
    return TrajectoryConfig(
        public_url=env.get("TRAJECTORY_PUBLIC_URL", f"http://{settings.host}:{settings.port}").rstrip("/"),
        allow_http_callbacks=env.get("TRAJECTORY_ALLOW_HTTP_CALLBACKS", "") == "1",
        backoff=Backoff(
            first_delay=float(env.get("TRAJECTORY_WEBHOOK_FIRST_DELAY", "30")),
            max_delay=float(env.get("TRAJECTORY_WEBHOOK_MAX_DELAY", "3600")),
            max_attempts=int(env.get("TRAJECTORY_WEBHOOK_MAX_ATTEMPTS", "8")),
        ),
    )


def build(settings: Settings, env: dict[str, str] | None = None) -> Service:
    env = dict(os.environ if env is None else env)
    app = TrajectoryApplication(store_env(settings.database_url),
                                tender=tender.load(env.get("TRAJECTORY_TENDER_FILE") or None),
                                config=config_from_env(settings, env),
                                calendar=installation_clock(env).today)
    credentials = Credentials.from_env(env)
    api = create_api(app, credentials)
    ready = readiness(api)
    sender = WebhookSender(app, timeout=float(env.get("TRAJECTORY_WEBHOOK_TIMEOUT", "10")), readiness=ready)
    interval = float(env.get("TRAJECTORY_DESK_SECONDS", "1.0"))

    async def assignment_desk() -> None:
        """Assigns providers to what was recorded since its last round: at once when this
        process recorded it (a burst of it at once), within `interval` when another
        process on the store did."""
        await run_rounds(in_thread(app.run_desk, lambda read: read < DESK_BATCH), name="assignment_desk",
                         interval=interval, wakeup=app.recorded, settle=DESK_SETTLE_SECONDS, readiness=ready)

    async def webhook_deliveries() -> None:
        """Schedules and sends notifications to providers' subscriptions."""
        await sender.run()

    return Service(settings=settings, app=app, api=api,
                   publishes_to=ACCESS["trajectory"].publishes, translate=published_events,
                   consumes_from=ACCESS["trajectory"].consumes,
                   background=(assignment_desk, webhook_deliveries),
                   audit_credentials=credentials)


def cli() -> None:
    serve(build(Settings.from_env("trajectory")))


if __name__ == "__main__":
    cli()
