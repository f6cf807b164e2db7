"""Coaching's commands against concurrent writers of one plan (issue 14, item 5), on
SQLite and PostgreSQL: coaches' check-ins, job losses, reopen requests, the scheduler and
the inbox, as several processes (applications on one store) writing at once. No 500, no
lost write, no double effect; a command that keeps losing is a 503 problem with
Retry-After — by the one rule of `contracts.commands`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from coaching.application import CoachingApplication
from coaching.domain import plan_id
from contracts.commands import Busy
from contracts.problems import Problem
from contracts.service import Outcome, store_env
from contracts.topics import TRAJECTORY_EVENTS
from services.coaching.tests.support import Clock, Feed, Trajectory
from tests.support.racing import at_once, always_conflicting, race

STARTS = dt.date(2027, 1, 4)
TODAY = dt.date(2028, 2, 1)  # the whole coaching year is behind us



@pytest.fixture
def processes(database_url, request):
    url = database_url("coaching")
    apps = [CoachingApplication(store_env(url), clock=Clock(TODAY)) for _ in range(6)]
    yield apps
    for app in apps:
        app.close()


@pytest.fixture
def plan(processes):
    trajectory = Trajectory("alkmaar")
    Feed(processes[0])(trajectory.opened(), trajectory.placed(STARTS))
    return plan_id(trajectory.id, 1), trajectory


def check_in(app: CoachingApplication, plan: Any, number: int) -> tuple[int, dict[str, Any]]:
    held_on = STARTS + dt.timedelta(weeks=(2, 6, 13, 26, 39, 52)[number - 1])
    return app.record_check_in(plan, recorded_by="municipality:alkmaar", number=number, held_on=held_on,
                               contact_made=True, still_employed=True, hours_per_week=32.0,
                               issues_raised=(), support=(), next_step=None)


def test_six_coaches_recording_six_check_ins_of_one_plan_at_once_all_stay(processes, plan):
    race(processes, 6)
    results = at_once(*[lambda app=app, n=n: check_in(app, plan[0], n)
                        for n, app in enumerate(processes, start=1)])
    assert [r[0] if isinstance(r, tuple) else r for r in results] == [201] * 6
    assert sorted(processes[0].repository.get(plan[0]).check_ins) == [1, 2, 3, 4, 5, 6]


def test_the_same_check_in_recorded_twice_at_once_is_recorded_once(processes, plan):
    race(processes[:2], 2)
    results = at_once(lambda: check_in(processes[0], plan[0], 1), lambda: check_in(processes[1], plan[0], 1))
    statuses = sorted(str(r[0]) if isinstance(r, tuple) else str(r.status) for r in results)
    assert statuses == ["201", "409"], results  # the domain's refusal stays a 409
    events = [type(e).__qualname__ for e in processes[0].events.get(plan[0])]
    assert events.count("CoachingPlan.CheckInRecorded") == 1


def test_a_job_loss_a_reopen_request_and_a_coach_change_from_the_inbox_at_once_all_stay(processes, plan):
    plan_id_, trajectory = plan
    race(processes[:3], 3)
    aftercare = trajectory.assigned("Agens", on=dt.date(2027, 5, 3))  # the provider takes over coaching
    results = at_once(
        lambda: processes[0].record_job_loss(plan_id_, lost_on=dt.date(2027, 5, 1), reason="contract-ended"),
        lambda: processes[1].request_reopen(plan_id_, reason="job-lost", requested_on=dt.date(2027, 5, 2),
                                            requested_by="municipality:alkmaar"),
        lambda: processes[2].apply(aftercare, TRAJECTORY_EVENTS, 0, 99))
    assert [r[0] if isinstance(r, tuple) else r for r in results] == [201, 201, Outcome.APPLIED], results
    events = [type(e).__qualname__ for e in processes[0].events.get(plan_id_)]
    for kind in ("CoachingPlan.JobLost", "CoachingPlan.ReopenRequested", "CoachingPlan.CoachChanged"):
        assert events.count(kind) == 1, (kind, events)


def test_the_scheduler_racing_a_check_in_records_each_once(processes, plan):
    race(processes[:2], 2)
    recorded, acted = at_once(lambda: check_in(processes[0], plan[0], 6),
                              lambda: processes[1].act_until(plan[0], TODAY))
    assert recorded[0] == 201 and acted > 0, (recorded, acted)
    assert processes[0].act_until(plan[0], TODAY) == 0  # nothing left, nothing twice


def test_a_command_that_keeps_losing_is_busy_with_retry_after(processes, plan):
    calls = always_conflicting(processes[0])
    with pytest.raises(Busy) as busy:
        check_in(processes[0], plan[0], 1)
    assert isinstance(busy.value, Problem) and busy.value.status == 503
    assert busy.value.headers == {"Retry-After": "1"} and calls["recorded"] > 1
    assert processes[0].act_until(plan[0], TODAY) == 0  # the scheduler leaves it to its next run
