"""The coaching plan's rules, on the aggregate alone (no store, no clock)."""

import datetime as dt
import uuid

import pytest

from coaching.domain import CoachingPlan, InvalidFact, PlanConflict, is_aftercare, plan_id
from coaching.schedule import add_months, check_weeks, schedule_for
from coaching.policy import Policies

STARTS = dt.date(2027, 1, 4)


def new_plan(weeks=(2, 6, 13, 26, 39, 52), grace_days=7, starts_on=STARTS):
    schedule = schedule_for(starts_on, weeks)
    trajectory_id = uuid.uuid4()
    return CoachingPlan(plan_id(trajectory_id, 1), trajectory_id=trajectory_id,
                        municipality="bergen", number=1, coach_id="municipality:bergen",
                        employer="Garage Duinzicht", hours_per_week=36, contract_type="permanent",
                        job_starts_on=starts_on, check_ins_due=list(schedule.check_ins_due),
                        six_month_on=schedule.six_month_on, ends_on=schedule.ends_on,
                        grace_days=grace_days)


def record(plan, today, **overrides):
    fields = dict(number=None, held_on=today, contact_made=True, still_employed=True,
                  hours_per_week=None, issues_raised=(), support=(), next_step=None,
                  recorded_by="municipality:bergen", today=today)
    return plan.record_check_in(**(fields | overrides))


@pytest.mark.parametrize("day,months,expected", [
    (dt.date(2027, 1, 31), 1, dt.date(2027, 2, 28)),
    (dt.date(2028, 2, 29), 12, dt.date(2029, 2, 28)),
    (dt.date(2027, 8, 31), 6, dt.date(2028, 2, 29)),
    (dt.date(2027, 12, 15), 1, dt.date(2028, 1, 15)),
])
def test_months_are_calendar_months_clamped_to_the_month_end(day, months, expected):
    assert add_months(day, months) == expected


@pytest.mark.parametrize("weeks", [(), (0, 2), (2, 2), (6, 2), (2, 53)])
def test_a_schedule_must_be_increasing_weeks_within_the_year(weeks):
    with pytest.raises(ValueError):
        check_weeks(weeks)


def test_policies_come_from_the_environment_per_municipality():
    policies = Policies.from_env({"COACHING_CHECK_IN_WEEKS": "4,13,52", "COACHING_GRACE_DAYS": "10",
                                  "COACHING_CHECK_IN_WEEKS_BERGEN": "2,26,52",
                                  "COACHING_GRACE_DAYS_HEILOO": "3"})
    assert policies.of("alkmaar").check_in_weeks == (4, 13, 52)
    assert (policies.of("bergen").check_in_weeks, policies.of("bergen").grace_days) == ((2, 26, 52), 10)
    assert (policies.of("heiloo").check_in_weeks, policies.of("heiloo").grace_days) == ((4, 13, 52), 3)
    with pytest.raises(ValueError, match="COACHING_CHECK_IN_WEEKS_CASTRICUM"):
        Policies.from_env({"COACHING_CHECK_IN_WEEKS_CASTRICUM": "13,2"})


@pytest.mark.parametrize("spelling", ["Directe bemiddeling en Nazorg", "directe-bemiddeling-en-nazorg",
                                      "DIRECTE BEMIDDELING EN NAZORG", "directe_bemiddeling_en_nazorg"])
def test_the_aftercare_discipline_is_recognised_however_it_is_spelled(spelling):
    assert is_aftercare(spelling)
    assert not is_aftercare("Arbeidsritme")


def test_the_plan_id_is_the_same_for_the_same_trajectory_and_number():
    trajectory_id = uuid.uuid4()
    assert plan_id(trajectory_id, 1) == plan_id(trajectory_id, 1) != plan_id(trajectory_id, 2)


def test_check_ins_must_agree_with_the_jobs_the_plan_knows():
    plan = new_plan()
    day = STARTS + dt.timedelta(days=14)
    with pytest.raises(PlanConflict, match="job loss|lost"):
        record(plan, day, still_employed=False)
    with pytest.raises(InvalidFact) as missing:
        record(plan, day, still_employed=None)
    assert missing.value.field == "still_employed"
    with pytest.raises(InvalidFact) as unknown:
        record(plan, day, contact_made=False, still_employed=True)
    assert unknown.value.field == "still_employed"
    assert record(plan, day) == 1
    with pytest.raises(PlanConflict, match="already recorded"):
        record(plan, day, number=1)


def test_without_contact_a_check_in_carries_the_last_known_employment():
    plan = new_plan()
    plan.lose_job(lost_on=STARTS + dt.timedelta(days=5), reason="resigned", today=STARTS + dt.timedelta(days=6))
    day = STARTS + dt.timedelta(days=14)
    record(plan, day, contact_made=False, still_employed=None)
    assert plan.check_ins[1].still_employed is False
    with pytest.raises(PlanConflict, match="new placement"):
        record(plan, day, still_employed=True)


@pytest.mark.parametrize("field,day", [
    ("held_on", STARTS + dt.timedelta(days=30)),  # after today
    ("held_on", STARTS - dt.timedelta(days=1)),  # before the job started
])
def test_impossible_check_in_dates_name_the_field(field, day):
    with pytest.raises(InvalidFact) as error:
        record(new_plan(), STARTS + dt.timedelta(days=14), held_on=day)
    assert error.value.field == field


def test_a_check_in_number_outside_the_schedule_is_refused():
    with pytest.raises(InvalidFact) as error:
        record(new_plan(weeks=(2, 52)), STARTS + dt.timedelta(days=14), number=3)
    assert error.value.field == "check_in"


def test_a_job_is_lost_once_and_a_new_one_starts_no_earlier_than_the_loss():
    plan = new_plan()
    today = dt.date(2027, 5, 10)
    plan.lose_job(lost_on=dt.date(2027, 5, 4), reason="dismissed", today=today)
    with pytest.raises(PlanConflict):
        plan.lose_job(lost_on=dt.date(2027, 5, 5), reason="dismissed", today=today)
    with pytest.raises(InvalidFact):
        plan.place_again(employer="X", hours_per_week=20, contract_type="other", starts_on=dt.date(2027, 5, 1))
    assert plan.place_again(employer="X", hours_per_week=20, contract_type="other", starts_on=dt.date(2027, 6, 1))
    assert plan.employed_on(dt.date(2027, 5, 20)) is False and plan.employed_on(dt.date(2027, 6, 1)) is True


def test_moving_straight_on_to_another_job_ends_the_first_without_a_job_loss():
    plan = new_plan()
    assert plan.place_again(employer="Zorggroep", hours_per_week=30, contract_type="permanent",
                            starts_on=dt.date(2027, 3, 1))
    assert [type(e).__name__ for e in plan.collect_events()][-1] == "PlacedAgain"
    assert [(j.ended_on, j.ended_by) for j in plan.jobs] == [(dt.date(2027, 3, 1), "changed"), (None, None)]
    assert plan.employed_on(dt.date(2027, 2, 28)) and plan.same_employer_on(dt.date(2027, 3, 1)) is False


def test_the_current_job_told_again_records_nothing():
    plan = new_plan()
    plan.collect_events()
    assert plan.place_again(employer="garage  duinzicht", hours_per_week=36, contract_type="permanent",
                            starts_on=STARTS) is False
    assert plan.collect_events() == []


def test_facts_dated_before_a_measured_six_month_point_are_refused():
    plan = new_plan()
    plan.act_until(plan.six_month_on)
    assert plan.six_month_point is not None
    with pytest.raises(PlanConflict, match="six-month"):
        plan.lose_job(lost_on=plan.six_month_on - dt.timedelta(days=3), reason="illness",
                      today=plan.six_month_on + dt.timedelta(days=1))
    plan.lose_job(lost_on=plan.six_month_on + dt.timedelta(days=1), reason="illness",
                  today=plan.six_month_on + dt.timedelta(days=1))


def test_what_fell_due_is_recorded_once_however_often_it_is_asked():
    plan = new_plan()
    assert plan.act_until(plan.ends_on) == 5 + 1 + 1  # week 52 is overdue only after the end
    assert plan.act_until(plan.ends_on) == 0
    assert plan.next_action_on() == plan.overdue_from(6)
    assert plan.act_until(plan.ends_on + dt.timedelta(days=30)) == 1
    assert plan.completed and plan.next_action_on() is None


def test_a_completed_plan_takes_follow_up_contacts_and_late_check_ins_but_no_job_changes():
    plan = new_plan(weeks=(2,))
    record(plan, STARTS + dt.timedelta(days=14))
    later = plan.ends_on + dt.timedelta(days=60)
    with pytest.raises(PlanConflict, match="still running"):
        plan.record_follow_up(contacted_on=plan.ends_on - dt.timedelta(days=1), contact_made=True,
                              employed=True, same_employer=True, today=plan.ends_on)
    plan.act_until(plan.ends_on)
    with pytest.raises(PlanConflict, match="follow-up"):
        plan.lose_job(lost_on=plan.ends_on - dt.timedelta(days=1), reason="dismissed", today=later)
    plan.record_follow_up(contacted_on=later, contact_made=True, employed=True, same_employer=False,
                          today=later)
    with pytest.raises(InvalidFact) as error:
        plan.record_follow_up(contacted_on=later, contact_made=False, employed=True,
                              same_employer=None, today=later)
    assert error.value.field == "employed"
    assert len(plan.follow_ups) == 1


def test_reopen_requests_get_their_own_deterministic_ids_and_keep_the_plan_going():
    plan = new_plan()
    today = dt.date(2027, 5, 10)
    plan.lose_job(lost_on=dt.date(2027, 5, 4), reason="dismissed", today=today)
    first = plan.request_reopen(reason="job-lost", requested_on=today, requested_by="municipality:bergen",
                                today=today)
    second = plan.request_reopen(reason="obstacles-returned", requested_on=today,
                                 requested_by="municipality:bergen", today=today)
    assert first != second and first == uuid.uuid5(plan.id, "reopen/1")
    assert not plan.completed


def test_an_event_that_could_not_be_published_is_never_stored():
    from pydantic import ValidationError

    from coaching.integration import ensure_translatable as publishable

    plan = new_plan()
    publishable(plan.pending_events)
    plan.change_coach("somebody", STARTS)  # not a coach id: the relay could not publish it
    with pytest.raises(ValidationError):
        publishable(plan.pending_events)
