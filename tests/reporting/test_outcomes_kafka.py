"""The reported failure through the real broker (issue 15): a 2008 placement whose coach
had contact only at week 2. Coaching's own domain runs the year -- the check-in, then
the overdue check-ins, the six-month point and the end of the year, both of which it
works out as "employed" because the job was never reported as ended -- and its events
travel over Kafka into reporting's store, which answers /figures: unknown at 6, 12 and
24 months, never employed; a placement with the week-26 and week-52 check-ins beside it
is employed, by check-in, and the figures add up."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from coaching.domain import CoachingPlan, plan_id
from coaching.integration import integration_events
from coaching.schedule import schedule_for
from contracts import events as ev
from contracts import kafka
from contracts.access import Credentials
from contracts.envelope import to_record
from contracts.inbox import Inbox
from infra.demo import write_credentials
from reporting.api import create_api
from reporting.store import ReportingStore
from services.reporting.tests.factory import WEEKS, wrap
from tests.support.kafka_tools import eventually, fresh_topics

pytestmark = [pytest.mark.kafka]

START = dt.date(2008, 3, 3)


def a_coached_year(weeks_with_contact: tuple[int, ...]) -> list:
    """A trajectory placed on START and its coaching year as coaching's domain records it."""
    t = uuid.uuid4()
    events = [
        wrap(ev.TrajectoryOpened(trajectory_id=t, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                                 municipality="alkmaar", programme="focus2move", opened_on=START - dt.timedelta(days=60))),
        wrap(ev.PlacedInJob(trajectory_id=t, municipality="alkmaar", employer="Bakkerij", hours_per_week=32,
                            contract_type="fixed-term", starts_on=START)),
    ]
    schedule = schedule_for(START, WEEKS)
    plan = CoachingPlan(plan_id(t, 1), trajectory_id=t, municipality="alkmaar", number=1,
                        coach_id="municipality:alkmaar", employer="Bakkerij", hours_per_week=32,
                        contract_type="fixed-term", job_starts_on=START, check_ins_due=list(schedule.check_ins_due),
                        six_month_on=schedule.six_month_on, ends_on=schedule.ends_on, grace_days=7)
    for number, week in enumerate(WEEKS, start=1):
        if week in weeks_with_contact:
            held = START + dt.timedelta(weeks=week)
            plan.record_check_in(number=number, held_on=held, contact_made=True, still_employed=True,
                                 hours_per_week=None, issues_raised=(), support=(), next_step=None,
                                 recorded_by=None, today=held)
    plan.act_until(schedule.ends_on)  # the scheduler: overdue check-ins, six months, the end
    for domain_event in plan.collect_events():
        events += [wrap(e, "coaching") for _, e in integration_events(domain_event)]
    return events


async def test_contact_only_at_week_2_is_unknown_after_kafka_never_employed(bootstrap, tmp_path):
    reported, proven = a_coached_year((2,)), a_coached_year(WEEKS)
    six_months = [e.data for e in reported if isinstance(e.data, ev.SixMonthPointReached)]
    assert six_months and six_months[0].employed  # what coaching says, without evidence
    topics = await fresh_topics(bootstrap, "trajectory", "coaching")
    store = ReportingStore(f"sqlite:///{tmp_path}/reporting.db")
    store.group = f"reporting-{topics['coaching'].split('.')[1]}"
    await fresh_topics(bootstrap, groups=(store.group,))
    producer = kafka.producer(bootstrap, "outcomes-test")
    await producer.start()
    inbox = Inbox(bootstrap_servers=bootstrap, topics=list(topics.values()), target=store, producer=producer)
    consuming = asyncio.create_task(inbox.run())
    try:
        for event in reported + proven:
            service = event.attributes.source.rsplit("tweespoor-", 1)[1]
            key, value, headers = to_record(event)
            await producer.send_and_wait(topics[service], value, key=key, headers=headers)
        await eventually(lambda: sum(d["events"] for d in store.documents("trajectory")) == len(reported + proven),
                         timeout=60)
    finally:
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        await producer.stop()

    path, tokens = write_credentials(tmp_path / "config")
    http = TestClient(create_api(store, Credentials.from_file(path)))
    figures = http.get("/figures", headers={"Authorization": f"Bearer {tokens['alkmaar-staff']}"}).json()
    outcomes = figures["coaching"]["outcomes"]
    for point, employed in (("6_months", 1), ("12_months", 1), ("24_months", 0)):
        block = outcomes[point]
        assert (block["reached"], block["employed"], block["not_employed"]) == (2, employed, 0), point
        assert block["employed"] + block["not_employed"] + block["unknown"] == block["reached"], point
        assert block["by_evidence"]["check-in"] == employed, point
    assert outcomes["12_months"]["unknown"] == 1 and outcomes["12_months"]["share_employed_of_known"] == 1.0
    store.close()
