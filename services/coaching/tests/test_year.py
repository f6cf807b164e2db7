"""A placement walked through its whole coaching year on an injected clock, the scheduler
running every day, as it would in production."""

import datetime as dt

import pytest

from contracts.events import (
    CheckInOverdue, CoachingCompleted, CoachingStarted, JobLost, PlacedAgain, SixMonthPointReached,
)
from coaching.application import CoachingApplication
from coaching.scheduler import Scheduler
from services.coaching.tests.support import Clock, Feed, Trajectory, kinds, published

STARTS = dt.date(2027, 1, 4)  # a Monday
DUE = [dt.date(2027, 1, 18), dt.date(2027, 2, 15), dt.date(2027, 4, 5), dt.date(2027, 7, 5),
       dt.date(2027, 10, 4), dt.date(2028, 1, 3)]  # weeks 2, 6, 13, 26, 39 and 52
SIX_MONTHS, ENDS = dt.date(2027, 7, 4), dt.date(2028, 1, 4)


@pytest.fixture
def clock():
    return Clock(STARTS)


@pytest.fixture
def app(clock):
    return CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


def start(app, provider="agens"):
    trajectory = Trajectory("alkmaar")
    Feed(app)(trajectory.opened(), trajectory.assigned(provider), trajectory.placed(STARTS))
    [plan] = app.plans(lambda s: True)
    return plan["plan_id"], trajectory


def check_in(app, plan_id, day, employed=True, number=None):
    """A check-in held on `day`: the scheduled one due that day, else the first outstanding."""
    number = number or (DUE.index(day) + 1 if day in DUE else None)
    app.record_check_in(plan_id, recorded_by="provider:agens", number=number, held_on=day,
                        contact_made=True, still_employed=employed,
                        hours_per_week=32 if employed else None, issues_raised=("travel",),
                        support=(), next_step="next-check-in")


def walk(app, clock, until, on_day):
    """Every day from the job's start to `until`: what the coach does, then the scheduler."""
    scheduler = Scheduler(app)
    day = STARTS
    while day <= until:
        clock.set(day)
        on_day(day)
        scheduler.run_once()
        day += dt.timedelta(days=1)


def test_a_year_with_one_missed_check_in_and_a_job_lost_at_month_four_and_regained_at_month_five(app, clock):
    plan_id, _ = start(app)
    missed = DUE[4]

    def coach(day):
        if day in DUE and day != missed:
            check_in(app, plan_id, day)
        if day == dt.date(2027, 5, 4):  # month four
            app.record_job_loss(plan_id, lost_on=day, reason="contract-ended")
        if day == dt.date(2027, 6, 4):  # month five, with another employer
            app.record_placement(plan_id, employer="Zorggroep Noord", hours_per_week=24,
                                 contract_type="permanent", starts_on=day)

    walk(app, clock, ENDS + dt.timedelta(days=30), coach)

    events = published(app)
    assert kinds(events) == [
        "CoachingStarted", "CheckInRecorded", "CheckInRecorded", "CheckInRecorded", "JobLost",
        "PlacedAgain", "SixMonthPointReached", "CheckInRecorded", "CheckInOverdue",
        "CheckInRecorded", "CoachingCompleted",
    ]
    started = next(e for e in events if isinstance(e, CoachingStarted))
    assert started.coach_id == "provider:agens"
    assert list(started.check_ins_due) == DUE and started.ends_on == ENDS
    assert started.six_month_on == SIX_MONTHS

    [overdue] = [e for e in events if isinstance(e, CheckInOverdue)]  # once, though run daily
    assert (overdue.check_in, overdue.due_on) == (5, missed)
    lost = next(e for e in events if isinstance(e, JobLost))
    assert lost.lost_on == dt.date(2027, 5, 4)
    again = next(e for e in events if isinstance(e, PlacedAgain))
    assert again.same_employer is False and again.ends_on == ENDS  # coaching goes on to the end
    six = next(e for e in events if isinstance(e, SixMonthPointReached))
    assert (six.measured_on, six.employed, six.same_employer) == (SIX_MONTHS, True, False)
    done = next(e for e in events if isinstance(e, CoachingCompleted))
    assert (done.completed_on, done.employed_at_end, done.same_employer) == (ENDS, True, False)

    plan = app.plan(plan_id)
    assert plan["status"] == "completed"
    assert [c["status"] for c in plan["check_ins"]] == ["recorded"] * 4 + ["overdue", "recorded"]
    assert [j["ended_by"] for j in plan["jobs"]] == ["lost", None]
    everyone = lambda s: True  # noqa: E731
    assert [(o["check_in"], o["coach_id"]) for o in app.overdue_check_ins(everyone)] == [(5, "provider:agens")]


def test_a_year_with_every_check_in_on_time_completes_with_the_same_employer_and_nothing_overdue(app, clock):
    plan_id, _ = start(app)
    walk(app, clock, ENDS + dt.timedelta(days=14),
         lambda day: check_in(app, plan_id, day) if day in DUE else None)

    events = published(app)
    assert kinds(events) == ["CoachingStarted"] + ["CheckInRecorded"] * 3 + [
        "SixMonthPointReached"] + ["CheckInRecorded"] * 3 + ["CoachingCompleted"]
    six = next(e for e in events if isinstance(e, SixMonthPointReached))
    assert (six.employed, six.same_employer) == (True, True)
    done = next(e for e in events if isinstance(e, CoachingCompleted))
    assert (done.employed_at_end, done.same_employer) == (True, True)
    assert app.overdue_check_ins(lambda s: True) == []


def test_a_job_lost_and_never_regained_ends_the_year_without_work(app, clock):
    plan_id, _ = start(app)

    def coach(day):
        if day == dt.date(2027, 3, 1):
            app.record_job_loss(plan_id, lost_on=day, reason="dismissed")
        if day in DUE:
            check_in(app, plan_id, day, employed=day < dt.date(2027, 3, 1))

    walk(app, clock, ENDS, coach)
    events = published(app)
    six = next(e for e in events if isinstance(e, SixMonthPointReached))
    done = next(e for e in events if isinstance(e, CoachingCompleted))
    assert (six.employed, six.same_employer) == (False, None)
    assert (done.employed_at_end, done.same_employer) == (False, None)


def test_a_check_in_recorded_after_its_grace_period_is_overdue_first_even_without_a_scheduler_run(app, clock):
    plan_id, _ = start(app)
    clock.set(DUE[0] + dt.timedelta(days=20))  # the scheduler never ran meanwhile
    check_in(app, plan_id, DUE[0] + dt.timedelta(days=19))
    assert kinds(published(app)) == ["CoachingStarted", "CheckInOverdue", "CheckInRecorded"]
    assert app.overdue_check_ins(lambda s: True) == []  # recorded now, so no longer listed
    assert Scheduler(app).run_once() == 0


def test_a_scheduler_that_was_down_for_months_catches_up_in_date_order(app, clock):
    start(app)
    clock.set(SIX_MONTHS + dt.timedelta(days=10))
    assert Scheduler(app).run_once() == 5
    events = published(app)
    # Week 26 fell due on 5 July and is overdue from the 13th: after the six-month point.
    assert kinds(events) == ["CoachingStarted"] + ["CheckInOverdue"] * 3 + [
        "SixMonthPointReached", "CheckInOverdue"]
    assert [e.check_in for e in events if isinstance(e, CheckInOverdue)] == [1, 2, 3, 4]
    assert Scheduler(app).run_once() == 0


def test_a_municipality_with_its_own_schedule_gets_its_own_check_in_weeks():
    from coaching.policy import CoachingPolicy, Policies

    policies = Policies(per_municipality={"heiloo": CoachingPolicy((4, 26, 52), grace_days=14)})
    app = CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, policies=policies,
                              clock=Clock(STARTS))
    heiloo, alkmaar = Trajectory("heiloo"), Trajectory("alkmaar")
    Feed(app)(heiloo.opened(), heiloo.placed(STARTS), alkmaar.opened(), alkmaar.placed(STARTS))
    started = {e.municipality: e for e in published(app) if isinstance(e, CoachingStarted)}
    assert list(started["heiloo"].check_ins_due) == [dt.date(2027, 2, 1), SIX_MONTHS + dt.timedelta(days=1), DUE[-1]]
    assert started["heiloo"].grace_days == 14
    assert list(started["alkmaar"].check_ins_due) == DUE and started["alkmaar"].grace_days == 7
