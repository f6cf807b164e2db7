"""Coaching consumes the registry's answers from intake's topic on the real broker (issue
15, item 2), on SQLite and PostgreSQL: an answer about a placement is kept with the
trajectory and proves the plan's result at its point, also when it is read before the
placement (the two topics are read side by side); an answer about the unknown-destination
cohort is read and skipped; none of them is dead-lettered or published again."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from coaching.domain import plan_id
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import BenefitObserved, EmploymentObserved
from contracts.inbox import Inbox
from contracts.outcomes import add_months
from contracts.topics import dead_letter_topic
from services.coaching.tests.support import NOW, Trajectory
from tests.support.kafka_tools import eventually, fresh_topics, read_all

pytestmark = [pytest.mark.kafka]

PLACED = dt.date(2008, 3, 3)


def observed(trajectory_id, *, cohort="placed", months=24, reference=PLACED, employed=True):
    """Both halves of one answer line, as intake publishes them."""
    on = add_months(reference, months)
    point = f"placement-{months}-months" if cohort == "placed" else f"lbu-{months}-months"
    common = dict(trajectory_id=trajectory_id, observation_id=uuid.uuid4(), client_id=uuid.uuid4(),
                  municipality="alkmaar", cohort=cohort, point=point, months_after=months,
                  reference_date=reference, observed_on=on, period_start=on - dt.timedelta(days=30),
                  period_end=on)
    return [EmploymentObserved(**common, employed=employed, employer_id="WNK-7" if employed else None,
                               hours_per_week=24 if employed else None),
            BenefitObserved(**common, on_benefit=not employed,
                            benefit_kind=None if employed else "bijstand")]


async def publish_on_intake(world, topic, events) -> None:
    for number, data in enumerate(events, 1):
        event = envelope(data, source=source_urn("alkmaar", "tweespoor-intake"),
                         origin=f"registry/{data.observation_id}/{number}", sequence=number, time=NOW)
        key, value, headers = to_record(event)
        await world.producer.send_and_wait(topic, value, key=key, headers=headers)


def answers_of(world, plan) -> list[dict]:
    try:
        return world.coaching.plan(plan)["registry_answers"]
    except Exception:  # not started yet
        return []


async def test_registry_answers_on_intakes_topic_reach_the_plan_they_are_about(world):
    intake = (await fresh_topics(world.bootstrap, "intake"))["intake"]
    trajectory, early, refuser = Trajectory("alkmaar"), Trajectory("alkmaar"), uuid.uuid4()
    answers = observed(trajectory.id)
    await publish_on_intake(world, intake, [
        *answers, *answers,  # delivered twice: kept once
        *observed(refuser, cohort="lbu-unknown-destination", months=3),
        *observed(early.id, months=6, employed=False)])  # read before its placement
    await world.publish(trajectory.opened(on=PLACED - dt.timedelta(days=60)), trajectory.placed(PLACED))
    inbox = Inbox(bootstrap_servers=world.bootstrap, topics=[world.topics["trajectory"], intake],
                  target=world.coaching, producer=world.producer)
    plan = plan_id(trajectory.id, 1)

    def settled() -> bool:
        return inbox.applied >= 2 and len(answers_of(world, plan)) == 1

    consuming = asyncio.create_task(inbox.run())
    try:
        await eventually(settled, timeout=90)
    finally:
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
    view = world.coaching.plan(plan)
    [kept] = view["registry_answers"]
    assert (kept["point"], kept["employed"], kept["employer_id"], kept["on_benefit"]) == (
        "placement-24-months", True, "WNK-7", False)
    twenty_four = next(o for o in view["outcomes"] if o["months"] == 24)
    assert twenty_four["result"] == "employed"
    assert twenty_four["evidence"] == {"kind": "registry", "on": add_months(PLACED, 24).isoformat()}
    # The answer read before its placement: kept, and the plan shows it once it starts.
    await world.publish(early.opened(on=PLACED - dt.timedelta(days=60)), early.placed(PLACED))
    consuming = asyncio.create_task(inbox.run())
    try:
        await eventually(lambda: answers_of(world, plan_id(early.id, 1)), timeout=60)
    finally:
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
    six = world.coaching.plan(plan_id(early.id, 1))["outcomes"][0]
    assert (six["months"], six["result"], six["evidence"]["kind"]) == (6, "not-employed", "registry")
    assert await read_all(world.bootstrap, dead_letter_topic(world.group)) == []
    while await world.relay().relay_once():
        pass
    assert not [e for e in await world.published() if isinstance(e.data, (EmploymentObserved, BenefitObserved))]
