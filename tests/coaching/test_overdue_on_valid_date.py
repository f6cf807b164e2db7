"""A check-in is overdue by the day it was held (its valid date), not by the day a coach
entered it (its recorded time): issue 15, item 4. On SQLite and PostgreSQL.

Before the fix, a check-in held on its due date and entered three weeks later was
recorded with a CheckInOverdue first, because the plan compared the day it was entered
with the due date and the grace period."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from coaching.application import CoachingApplication
from coaching.domain import CoachingPlan, plan_id
from contracts.service import store_env
from services.coaching.tests.support import Clock, Feed, Trajectory

STARTS = dt.date(2027, 1, 4)
DUE_1 = dt.date(2027, 1, 18)  # week 2; with 7 days' grace overdue from the 26th
DUE_2 = dt.date(2027, 2, 15)  # week 6; overdue from the 23rd
ENTERED = dt.date(2027, 3, 1)  # the coach enters both on this day


@pytest.fixture
def url(database_url):
    return database_url("coaching")


@pytest.fixture
def app(url):
    app = CoachingApplication(store_env(url), clock=Clock(ENTERED))
    yield app
    app.close()


def check_in(app: CoachingApplication, plan: uuid.UUID, number: int, held_on: dt.date) -> Any:
    return app.record_check_in(plan, recorded_by="municipality:alkmaar", number=number,
                               held_on=held_on, contact_made=True, still_employed=True,
                               hours_per_week=32.0, issues_raised=(), support=(), next_step=None)


def stored_kinds(app: CoachingApplication, plan: uuid.UUID) -> list[str]:
    return [type(e).__name__ for e in app.events.get(plan)]


def test_a_check_in_held_on_its_due_date_and_entered_later_is_not_overdue(app, url):
    trajectory = Trajectory("alkmaar")
    Feed(app)(trajectory.opened(), trajectory.placed(STARTS))
    plan = plan_id(trajectory.id, 1)

    assert check_in(app, plan, 1, DUE_1)[0] == 201  # held on time, entered five weeks later
    assert check_in(app, plan, 2, DUE_2 + dt.timedelta(days=8))[0] == 201  # held after its grace

    again = CoachingApplication(store_env(url), clock=Clock(ENTERED))  # as another process
    assert stored_kinds(again, plan) == ["Started", "CheckInRecorded", "CheckInOverdue", "CheckInRecorded"]
    overdue = [e for e in again.events.get(plan) if isinstance(e, CoachingPlan.CheckInOverdue)]
    assert [(e.check_in, e.due_on) for e in overdue] == [(2, DUE_2)]
    view = again.plan(plan)
    assert [(c["check_in"], c["status"], c["overdue"]) for c in view["check_ins"][:2]] == [
        (1, "recorded", False), (2, "recorded", True)]
    assert again.overdue_check_ins(lambda s: True) == []  # both are recorded now
    again.close()


def test_a_check_in_flagged_by_the_scheduler_and_then_entered_as_held_on_time_is_not_shown_overdue(app):
    """The scheduler flags what is not recorded by the end of its grace (what the system
    knew then, and it stays on record); a check-in entered afterwards as held on its due
    date was on time all the same, and the plan says so."""
    trajectory = Trajectory("alkmaar")
    Feed(app)(trajectory.opened(), trajectory.placed(STARTS))
    plan = plan_id(trajectory.id, 1)
    assert app.act_until(plan, dt.date(2027, 1, 26)) == 1  # nothing recorded by its grace's end
    assert check_in(app, plan, 1, DUE_1)[0] == 201

    view = app.plan(plan)
    assert (view["check_ins"][0]["status"], view["check_ins"][0]["overdue"]) == ("recorded", False)
    assert stored_kinds(app, plan) == ["Started", "CheckInOverdue", "CheckInRecorded"]
