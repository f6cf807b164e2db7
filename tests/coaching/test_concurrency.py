"""Writers of one plan that meet in the store (SQLite and PostgreSQL): the inbox applying
a placement while the scheduler records an overdue check-in. Both effects stay."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

from contracts.service import Outcome, store_env
from contracts.topics import TRAJECTORY_EVENTS
from coaching.application import CoachingApplication
from coaching.domain import plan_id
from coaching.scheduler import Scheduler
from services.coaching.tests.support import Clock, Feed, Trajectory, kinds, published

STARTS = dt.date(2027, 1, 4)


async def test_a_placement_applied_while_the_scheduler_writes_the_same_plan_is_not_lost(database_url):
    url = database_url("coaching")
    clock = Clock(dt.date(2027, 3, 1))
    inbox_side = CoachingApplication(store_env(url), clock=clock)
    scheduler_side = CoachingApplication(store_env(url), clock=clock)
    try:
        trajectory = Trajectory("castricum")
        feed = Feed(inbox_side)
        feed(trajectory.opened(), trajectory.placed(STARTS))
        inbox_side.record_job_loss(plan_id(trajectory.id, 1), lost_on=dt.date(2027, 2, 1),
                                   reason="contract-ended")
        barrier = threading.Barrier(2)
        record, save = inbox_side._record, scheduler_side.save
        calls = {"record": 0}

        def record_late(processing_event):  # decides first, writes second: must lose
            calls["record"] += 1
            if calls["record"] == 1:
                barrier.wait(timeout=30)
                time.sleep(0.5)
            return record(processing_event)

        def save_at_once(*aggregates, **kwargs):
            barrier.wait(timeout=30)
            scheduler_side.save = save
            return save(*aggregates, **kwargs)

        inbox_side._record, scheduler_side.save = record_late, save_at_once
        placed = trajectory.placed(dt.date(2027, 3, 1), employer="Zorggroep Noord")
        outcome, recorded = await asyncio.gather(
            asyncio.to_thread(inbox_side.apply, placed, TRAJECTORY_EVENTS, 0, 99),
            asyncio.to_thread(Scheduler(scheduler_side).run_once))
        assert outcome is Outcome.APPLIED and recorded == 2  # check-ins 1 and 2 overdue
        assert calls["record"] == 2  # decided again after the conflict
        assert kinds(published(inbox_side))[-3:] == ["CheckInOverdue", "CheckInOverdue", "PlacedAgain"]
        assert inbox_side.plan(plan_id(trajectory.id, 1))["employed"] is True
    finally:
        inbox_side.close()
        scheduler_side.close()
