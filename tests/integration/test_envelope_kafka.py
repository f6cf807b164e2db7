"""Every event type survives a round trip through a real Kafka record in binary mode."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from contracts import kafka
from contracts.envelope import envelope, from_record, source_urn, to_record
from contracts.events import (
    CheckInOverdue, CheckInRecorded, ClientReferred, CoachingCompleted, CoachingStarted,
    ContractStarted, JobLost, ObstacleIdentified, ObstacleResolved, PlacedInJob,
    ProviderAssigned, ReferralRejected, TrajectoryClosed, TrajectoryOpened,
)
from tests.support.kafka_tools import fresh_topics, read_all

pytestmark = [pytest.mark.kafka]

T, D = uuid.uuid4(), dt.date(2026, 11, 2)
SAMPLES = [
    ClientReferred(trajectory_id=T, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                   municipality="alkmaar", programme="focus2move", benefit="bijstand", referred_on=D),
    ReferralRejected(trajectory_id=T, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                     municipality="heiloo", programme="reintegration", reason_code="not-registered-at-uwv",
                     rejected_on=D),
    TrajectoryOpened(trajectory_id=T, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                     municipality="alkmaar", programme="focus2move", opened_on=D),
    ProviderAssigned(trajectory_id=T, provider="Agens", discipline="Arbeidsritme", assigned_on=D),
    ContractStarted(trajectory_id=T, employer="WNK", starts_on=D, ends_on=D + dt.timedelta(days=180)),
    ObstacleIdentified(trajectory_id=T, obstacle_id=uuid.uuid4(), kind="debts", identified_on=D),
    ObstacleResolved(trajectory_id=T, obstacle_id=uuid.uuid4(), outcome="manageable", resolved_on=D),
    PlacedInJob(trajectory_id=T, municipality="alkmaar", employer="Bakkerij", hours_per_week=32,
                contract_type="fixed-term", starts_on=D),
    TrajectoryClosed(trajectory_id=T, reason="unknown-destination", closed_on=D),
    CoachingStarted(trajectory_id=T, plan_id=uuid.uuid4(), municipality="alkmaar", coach_id="c-1",
                    job_starts_on=D, ends_on=D + dt.timedelta(days=365), check_ins_due=(D, D)),
    CheckInRecorded(trajectory_id=T, plan_id=uuid.uuid4(), check_in=1, held_on=D, contact_made=True,
                    still_employed=True, hours_per_week=32, support=("travel",)),
    CheckInOverdue(trajectory_id=T, plan_id=uuid.uuid4(), check_in=2, due_on=D),
    JobLost(trajectory_id=T, plan_id=uuid.uuid4(), lost_on=D, reason="contract-ended"),
    CoachingCompleted(trajectory_id=T, plan_id=uuid.uuid4(), completed_on=D, employed_at_end=True,
                      same_employer=False),
]


async def test_every_event_type_round_trips_through_real_kafka_headers(bootstrap):
    topics = await fresh_topics(bootstrap, "envelope")
    sent = [envelope(e, source=source_urn("alkmaar", "tweespoor-test"), origin=f"o/{i}",
                     sequence=i + 1, time=dt.datetime.now(dt.UTC))
            for i, e in enumerate(SAMPLES)]
    producer = kafka.producer(bootstrap, "envelope-test")
    await producer.start()
    try:
        for event in sent:
            key, value, headers = to_record(event)
            await producer.send_and_wait(topics["envelope"], value, key=key, headers=headers)
    finally:
        await producer.stop()

    received = [from_record(r.key, r.value, list(r.headers))
                for r in await read_all(bootstrap, topics["envelope"])]
    assert sorted(received, key=lambda e: e.attributes.sequence) == sent
