"""A plan's results carry their evidence (issue 15): coaching keeps the registry's answers
with the plan they are about, shows the result at 6, 12 and 24 months by the one rule of
`contracts.outcomes`, and its six-month and end-of-year events say what the evidence
proved, beside the job record they always carried."""

import datetime as dt
import uuid

from coaching.domain import RegistryAnswers, answers_id
from coaching.integration import integration_events
from coaching.views import describe
from contracts.events import CoachingCompleted, SixMonthPointReached
from contracts.outcomes import add_months
from services.coaching.tests.test_plan import STARTS, new_plan, record


def answer(plan, months, **overrides):
    on = add_months(plan.job_starts_on, months)
    fields = dict(observation_id=uuid.uuid5(plan.id, f"answer/{months}"), point=f"placement-{months}-months",
                  months_after=months, reference_date=plan.job_starts_on, observed_on=on,
                  period_start=on - dt.timedelta(days=30), period_end=on)
    return fields | overrides


def points(plan):
    return {e.type: e for d in plan.collect_events() for _, e in integration_events(d)
            if isinstance(e, (SixMonthPointReached, CoachingCompleted))}


def test_a_year_with_contact_only_at_week_two_ends_unknown_though_the_job_was_never_ended():
    plan = new_plan()
    record(plan, STARTS + dt.timedelta(weeks=2), number=1)
    plan.act_until(plan.ends_on)
    published = points(plan)
    six = published[SixMonthPointReached.type]
    end = published[CoachingCompleted.type]
    assert (six.employed, six.result, six.evidence, six.evidence_on) == (True, "unknown", None, None)
    assert (end.employed_at_end, end.result, end.evidence) == (True, "unknown", None)
    view = describe(plan)
    assert [(o["months"], o["result"], o["evidence"]) for o in view["outcomes"]] == [
        (6, "unknown", None), (12, "unknown", None), (24, "unknown", None)]
    assert view["six_month_point"]["result"] == "unknown" and view["six_month_point"]["employed"] is True


def test_the_week_26_check_in_with_contact_proves_the_six_month_result():
    plan = new_plan()
    held = STARTS + dt.timedelta(weeks=26)
    record(plan, held, number=4)
    plan.act_until(plan.six_month_on)
    six = points(plan)[SixMonthPointReached.type]
    assert (six.result, six.evidence, six.evidence_on) == ("employed", "check-in", held)
    assert describe(plan)["six_month_point"] | {} == {
        "measured_on": plan.six_month_on.isoformat(), "employed": True, "same_employer": True,
        "result": "employed", "evidence": "check-in", "evidence_on": held.isoformat()}


def test_a_reported_job_loss_makes_the_end_of_the_year_not_employed():
    plan = new_plan()
    lost = add_months(STARTS, 8)
    plan.lose_job(lost_on=lost, reason="dismissed", today=lost)
    plan.act_until(plan.ends_on)
    end = points(plan)[CoachingCompleted.type]
    assert (end.employed_at_end, end.result, end.evidence, end.evidence_on) == (False, "not-employed", "job-loss", lost)


def kept_for(plan):
    return RegistryAnswers(answers_id(plan.trajectory_id), trajectory_id=plan.trajectory_id,
                           municipality=plan.municipality)


def test_registry_answers_are_kept_once_in_either_order_and_prove_the_24_month_result_after_the_year():
    plan = new_plan()
    plan.act_until(plan.ends_on)
    answers = kept_for(plan)
    when = answer(plan, 24)
    assert answers.observe_benefit(**when, on_benefit=False, benefit_kind=None)
    assert answers.observe_employment(**when, employed=True, employer_id="KVK-1234", hours_per_week=32)
    # Kafka delivers at least once: the same halves again change nothing.
    assert not answers.observe_employment(**when, employed=True, employer_id="KVK-1234", hours_per_week=32)
    assert not answers.observe_benefit(**when, on_benefit=False, benefit_kind=None)
    assert len(answers.collect_events()) == 3  # opened, and the two halves
    [kept] = answers.answers
    assert (kept.employed, kept.employer_id, kept.hours_per_week, kept.on_benefit) == (True, "KVK-1234", 32, False)
    view = describe(plan, plan.answers_about(answers.answers))
    outcomes = {o["months"]: o for o in view["outcomes"]}
    assert outcomes[24]["result"] == "employed"
    assert outcomes[24]["evidence"] == {"kind": "registry", "on": add_months(STARTS, 24).isoformat()}
    assert outcomes[12]["result"] == "unknown"  # the answer speaks for its own point only
    [shown] = view["registry_answers"]
    assert shown["point"] == "placement-24-months" and shown["employer_id"] == "KVK-1234"


def test_an_answer_about_another_placement_is_not_this_plans():
    plan = new_plan()
    answers = kept_for(plan)
    answers.observe_employment(**answer(plan, 6, reference_date=STARTS + dt.timedelta(days=40)),
                               employed=False, employer_id=None, hours_per_week=None)
    assert plan.answers_about(answers.answers) == []
    # Not even when handed over anyway: the rule counts answers about the plan's own start.
    assert plan.outcome(6, answers.answers).result == "unknown"


def test_an_answer_known_when_a_point_is_measured_proves_its_result():
    plan = new_plan()
    answers = kept_for(plan)
    answers.observe_employment(**answer(plan, 6), employed=False, employer_id=None, hours_per_week=None)
    plan.act_until(plan.six_month_on, answers.answers)
    six = points(plan)[SixMonthPointReached.type]
    assert (six.employed, six.result, six.evidence) == (True, "not-employed", "registry")


def test_registry_answers_translate_to_nothing_they_are_intakes_events():
    plan = new_plan()
    answers = kept_for(plan)
    answers.observe_employment(**answer(plan, 6), employed=True, employer_id="KVK-1", hours_per_week=20)
    assert [e for stored in answers.collect_events() for e in integration_events(stored)] == []


def test_a_six_month_event_stored_before_results_were_kept_still_applies_and_publishes():
    """The previous release stored SixMonthPointReached without result or evidence."""
    plan = new_plan()
    plan.act_until(plan.six_month_on)
    stored = [e for e in plan.collect_events() if type(e).__name__ == "SixMonthPointReached"][0]
    for name in ("result", "evidence", "evidence_on"):
        del stored.__dict__[name]
    replayed = new_plan()
    replayed.__dict__.update(id=plan.id, trajectory_id=plan.trajectory_id)
    stored.apply(replayed)
    assert replayed.six_month_point.result is None and replayed.six_month_point.employed is True
    [(_, published)] = integration_events(stored)
    assert published.result is None and published.employed is True
