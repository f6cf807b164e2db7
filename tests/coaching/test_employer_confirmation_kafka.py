"""An employer's confirmation through the real broker into reporting (issue 15, item 1).

A 2008 placement whose coach had contact only at week 2: coaching (its inbox, scheduler
and outbox relay, on SQLite and PostgreSQL) runs the year, reporting folds its events
from Kafka and answers /figures: the twelve-month result is unknown. Then the coach
records the employer's confirmation over HTTP, the relay publishes
EmploymentConfirmedByEmployer, and reporting's figures turn that result into employed,
with evidence "employer"."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from coaching.api import create_api
from coaching.domain import plan_id
from coaching.scheduler import Scheduler
from contracts.access import Credentials
from contracts.events import EmploymentConfirmedByEmployer
from contracts.inbox import Inbox
from infra.demo import write_credentials
from reporting.api import create_api as reporting_api
from reporting.store import ReportingStore
from services.coaching.tests.support import Trajectory
from tests.coaching.conftest import run_inbox_until
from tests.support.kafka_tools import eventually, fresh_topics

pytestmark = [pytest.mark.kafka]

PLACED = dt.date(2008, 3, 3)  # every point of it has passed by the wall clock reporting asks on
TWELVE = dt.date(2009, 3, 3)  # the twelve-month point, and the end of the coaching year


async def relay_all(world) -> None:
    relay = world.relay()
    while await relay.relay_once():
        pass


async def test_an_employers_confirmation_over_kafka_makes_an_unknown_twelve_month_result_employed(
        world, database_url, tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    credentials = Credentials.from_file(path)
    trajectory = Trajectory("alkmaar")
    await world.publish(trajectory.opened(on=PLACED - dt.timedelta(days=60)), trajectory.placed(PLACED))
    await run_inbox_until(world.inbox(), lambda: bool(world.coaching.plans(lambda s: True)))
    plan = str(plan_id(trajectory.id, 1))
    coach = TestClient(create_api(world.coaching, credentials))
    headers = {"Authorization": f"Bearer {tokens['alkmaar-coach']}"}
    world.clock.set(PLACED + dt.timedelta(weeks=2))
    assert coach.post(f"/plans/{plan}/check-ins", headers=headers, json={
        "check_in": 1, "held_on": world.clock().isoformat(), "contact_made": True,
        "still_employed": True}).status_code == 201
    world.clock.set(TWELVE + dt.timedelta(days=7))
    Scheduler(world.coaching).run_once()  # the overdue check-ins, six months, the end of the year
    await relay_all(world)

    store = ReportingStore(database_url("reporting"))
    store.group = f"reporting-{uuid.uuid4().hex[:8]}"
    await fresh_topics(world.bootstrap, groups=(store.group,))
    inbox = Inbox(bootstrap_servers=world.bootstrap, topics=list(world.topics.values()), target=store,
                  producer=world.producer)
    consuming = asyncio.create_task(inbox.run())
    reports = TestClient(reporting_api(store, credentials))

    def document() -> dict:
        return next(iter(store.documents("trajectory")), {})

    def twelve_months() -> dict:
        figures = reports.get("/figures", headers={"Authorization": f"Bearer {tokens['alkmaar-staff']}"})
        assert figures.status_code == 200, figures.text
        return figures.json()["coaching"]["outcomes"]["12_months"]

    try:
        await eventually(lambda: "completed" in document().get("coaching", {}), timeout=60)
        before = twelve_months()
        assert (before["reached"], before["employed"], before["unknown"]) == (1, 0, 1)
        assert before["by_evidence"]["employer"] == 0

        confirmed = coach.post(f"/plans/{plan}/employer-confirmations", headers=headers | {
            "Idempotency-Key": "werkgever-maart"}, json={
            "confirmed_on": TWELVE.isoformat(), "employed": True, "same_employer": True,
            "hours_per_week": 32})
        assert confirmed.status_code == 201, confirmed.text
        await relay_all(world)
        await eventually(lambda: "employer_confirmations" in document().get("coaching", {}), timeout=60)
    finally:
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)

    after = twelve_months()
    assert (after["reached"], after["employed"], after["not_employed"], after["unknown"]) == (1, 1, 0, 0)
    assert after["by_evidence"]["employer"] == 1 and sum(after["by_evidence"].values()) == 1
    [event] = [e for e in await world.published() if isinstance(e.data, EmploymentConfirmedByEmployer)]
    assert event.attributes.subject == str(trajectory.id)
    assert event.attributes.type == "nl.reintegratie.coaching.employment-confirmed-by-employer.v1"
    assert (event.data.confirmed_on, event.data.recorded_by) == (TWELVE, "municipality:alkmaar")
    store.close()
