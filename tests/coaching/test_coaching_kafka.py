"""Coaching on the real broker and real stores (SQLite and PostgreSQL): a placement on the
trajectory topic starts a plan that is published on coaching's topic; providers report
by signed webhook, once, on their own coachees only."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts.access import Credentials
from contracts.events import CheckInRecorded, CoachingStarted
from contracts.topics import dead_letter_topic
from contracts.webhooks import sign
from coaching.api import create_api
from coaching.domain import plan_id
from infra.demo import write_credentials
from services.coaching.tests.support import Trajectory
from tests.coaching.conftest import STARTS, run_inbox_until
from tests.support.kafka_tools import header, read_all

pytestmark = [pytest.mark.kafka]


def has_plan(app, trajectory: Trajectory) -> bool:
    return bool(app.plans(lambda s: True, trajectory_id=trajectory.id))


async def test_a_placement_on_kafka_starts_coaching_on_kafka(world):
    trajectory = Trajectory("heiloo")
    await world.publish(trajectory.opened(), trajectory.assigned("Nieuwland Opleidingen"),
                        trajectory.placed(STARTS))
    await run_inbox_until(world.inbox(), lambda: has_plan(world.coaching, trajectory))

    assert await world.relay().relay_once() >= 1
    [started] = await world.published()
    assert isinstance(started.data, CoachingStarted)
    assert started.data.plan_id == plan_id(trajectory.id, 1)
    assert started.data.coach_id == "provider:nieuwland"
    assert started.data.check_ins_due[0] == dt.date(2027, 1, 18)
    assert started.data.ends_on == dt.date(2028, 1, 4)
    assert started.attributes.subject == str(trajectory.id)
    assert started.attributes.source.endswith(":systeem:tweespoor-coaching")
    assert started.attributes.type == "nl.reintegratie.coaching.started.v1"


async def test_the_same_placement_delivered_twice_starts_one_plan(world):
    trajectory = Trajectory("alkmaar")
    placed = trajectory.placed(STARTS)
    await world.publish(trajectory.opened(), placed, placed)  # a relay that published twice
    inbox = world.inbox()
    await run_inbox_until(inbox, lambda: inbox.applied >= 2 and has_plan(world.coaching, trajectory))
    assert await world.relay().relay_once() >= 1
    assert [type(e.data) for e in await world.published()] == [CoachingStarted]


async def test_aftercare_for_a_trajectory_never_opened_goes_to_the_dead_letters(world):
    stray, trajectory = Trajectory("bergen"), Trajectory("bergen")
    await world.publish(stray.assigned("agens"), trajectory.opened(), trajectory.placed(STARTS))

    async def both() -> bool:  # the stray may sit on another partition, after its retries
        dead = await read_all(world.bootstrap, dead_letter_topic(world.group))
        return bool(dead) and has_plan(world.coaching, trajectory)

    await run_inbox_until(world.inbox(), both, timeout=60)
    dead = await read_all(world.bootstrap, dead_letter_topic(world.group))
    assert len(dead) == 1 and "UnknownTrajectory" in header(dead[0], "dlq_reason")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return Credentials.from_file(path), tokens


def check_in(**overrides) -> bytes:
    return json.dumps({"check_in": 1, "held_on": "2027-01-18", "contact_made": True,
                       "still_employed": True, "hours_per_week": 32,
                       "support": ["conflict-at-work"]} | overrides).encode()


async def test_provider_webhooks_are_verified_applied_once_and_scoped_to_own_coachees(world, demo):
    credentials, _ = demo
    agens_client, own = Trajectory("alkmaar"), Trajectory("alkmaar")
    await world.publish(agens_client.opened(), agens_client.assigned("agens"),
                        agens_client.placed(STARTS), own.opened(), own.placed(STARTS))
    await run_inbox_until(world.inbox(), lambda: has_plan(world.coaching, own))
    world.clock.set(dt.date(2027, 1, 19))
    client = TestClient(create_api(world.coaching, credentials))
    secret = credentials.provider("agens").webhook_secret
    url = f"/providers/agens/plans/{plan_id(agens_client.id, 1)}/check-ins"

    body = check_in()
    headers = sign(secret, body)
    forged = sign("whsec_" + "A" * 32, body)
    assert client.post(url, content=body, headers=forged).status_code == 401
    first = client.post(url, content=body, headers=headers)
    replayed = client.post(url, content=body, headers=headers)
    assert (first.status_code, replayed.status_code) == (202, 202), first.text
    assert first.json() == replayed.json()
    # Agens's signature is good, but the other plan is the municipality's own coachee.
    not_mine = client.post(f"/providers/agens/plans/{plan_id(own.id, 1)}/check-ins", content=body,
                           headers=sign(secret, body))
    assert not_mine.status_code == 404
    assert not_mine.headers["content-type"] == "application/problem+json"
    assert client.post(f"/providers/agens/plans/{uuid.uuid4()}/check-ins", content=body,
                       headers=sign(secret, body)).status_code == 404

    await world.relay().relay_once()
    recorded = [e for e in await world.published() if isinstance(e.data, CheckInRecorded)]
    assert len(recorded) == 1
    assert recorded[0].data.plan_id == plan_id(agens_client.id, 1)
    assert recorded[0].data.recorded_by == "provider:agens"
    assert recorded[0].data.support == ("conflict-at-work",)
