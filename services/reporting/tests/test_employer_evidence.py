"""The employer's confirmation as evidence of a placement's result (issue 15, item 1):
coaching publishes EmploymentConfirmedByEmployer, reporting folds it onto the trajectory's
document, and `placement_of` reads it as evidence of kind "employer"."""

import datetime as dt
import uuid

from contracts import events as ev
from reporting.figures import outcome_figures
from reporting.outcomes import add_months, outcome_at, placement_of
from services.reporting.tests.factory import coached, fold, wrap

START = dt.date(2008, 3, 3)
LATER = dt.date(2011, 1, 1)  # every point of a 2008 placement has passed



def confirmed(events, on, *, employed=True, same_employer=True):
    """An employer's confirmation about the placement of `events` (one `coached` year)."""
    started = next(e.data for e in events if isinstance(e.data, ev.CoachingStarted))
    return wrap(ev.EmploymentConfirmedByEmployer(
        trajectory_id=started.trajectory_id, plan_id=started.plan_id, municipality=started.municipality,
        confirmed_on=on, employed=employed, same_employer=same_employer,
        hours_per_week=32 if employed else None), "coaching")


def test_an_employers_confirmation_in_the_window_makes_the_twelve_month_result_known():
    year = coached(start=START, contacts=(2,))
    twelve = add_months(START, 12)
    [doc] = fold(year + [confirmed(year, twelve + dt.timedelta(days=10), same_employer=False)])
    assert doc["coaching"]["employer_confirmations"] == {
        (twelve + dt.timedelta(days=10)).isoformat(): {"employed": True, "same_employer": False,
                                                       "hours_per_week": 32}}
    placement = placement_of(doc)
    outcome = outcome_at(placement, 12)
    assert (outcome.result, outcome.evidence.kind, outcome.evidence.on) == (
        "employed", "employer", twelve + dt.timedelta(days=10))
    assert outcome.same_employer is False
    assert outcome_at(placement, 6).result == "unknown" and outcome_at(placement, 24).result == "unknown"
    o = outcome_figures([doc], today=LATER)["outcomes"]["12_months"]
    assert (o["reached"], o["employed"], o["unknown"], o["by_evidence"]["employer"]) == (1, 1, 0, 1)


def test_outside_the_window_or_no_longer_with_that_employer_is_no_evidence():
    year = coached(start=START, contacts=(2,))
    twelve = add_months(START, 12)
    [doc] = fold(year + [confirmed(year, twelve + dt.timedelta(days=15)),
                         confirmed(year, twelve - dt.timedelta(weeks=6, days=1)),
                         confirmed(year, twelve, employed=False)])
    assert len(doc["coaching"]["employer_confirmations"]) == 3
    assert outcome_at(placement_of(doc), 12).result == "unknown"
    assert outcome_figures([doc], today=LATER)["outcomes"]["12_months"]["by_evidence"]["employer"] == 0


def test_the_registry_comes_before_the_employer_and_the_employer_before_a_contact():
    year = coached(start=START, contacts=(2, 6, 13, 26, 39, 52), registry=((6, False),))
    [doc] = fold(year + [confirmed(year, add_months(START, 6)), confirmed(year, add_months(START, 12))])
    placement = placement_of(doc)
    assert outcome_at(placement, 6).evidence.kind == "registry"
    assert outcome_at(placement, 12).evidence.kind == "employer"


def test_a_confirmation_folds_the_same_in_whatever_order_and_however_often_it_arrives():
    year = coached(start=START, contacts=(2,))
    extra = confirmed(year, add_months(START, 24))
    forward, backward = fold(year + [extra]), fold([extra, extra] + list(reversed(year)))
    assert forward[0]["coaching"]["employer_confirmations"] == backward[0]["coaching"]["employer_confirmations"]
    assert outcome_at(placement_of(backward[0]), 24).evidence.kind == "employer"
    assert uuid.UUID(forward[0]["coaching"]["plan_id"])
