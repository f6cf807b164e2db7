"""An employer's confirmation of a placement's result (issue 15, item 1): recorded on the
plan while it runs and after the year, by the coach over bearer HTTP or the provider by
signed webhook; within the year it must agree with the plan's job record; the same one
twice records nothing; it is published as EmploymentConfirmedByEmployer."""

import datetime as dt
import uuid

import pytest

from coaching.domain import InvalidFact, PlanConflict
from coaching.integration import integration_events
from coaching.scheduler import Scheduler
from contracts.events import EmploymentConfirmedByEmployer
from services.coaching.tests.support import kinds, published
from services.coaching.tests.test_api import (  # noqa: F401 (fixtures)
    app, auth, client, clock, demo, is_problem, plans, signed,
)
from services.coaching.tests.test_plan import STARTS, new_plan


def confirm(plan, today, **overrides):
    fields = dict(confirmed_on=today, employed=True, same_employer=True, hours_per_week=None,
                  recorded_by="municipality:bergen", today=today)
    return plan.confirm_by_employer(**(fields | overrides))


# --- the plan -------------------------------------------------------------------------


def test_an_employer_confirms_within_the_year_and_after_it():
    plan = new_plan()
    day = STARTS + dt.timedelta(days=100)
    assert confirm(plan, day, hours_per_week=36)
    plan.act_until(plan.ends_on)
    later = plan.ends_on + dt.timedelta(days=200)
    # After the year nobody keeps the job record: the employer's word stands for itself.
    assert confirm(plan, later, employed=False)
    assert [(c.confirmed_on, c.employed) for c in plan.employer_confirmations] == [(day, True), (later, False)]
    published = [e for d in plan.collect_events() for _, e in integration_events(d)
                 if isinstance(e, EmploymentConfirmedByEmployer)]
    assert [(e.confirmed_on, e.employed, e.same_employer, e.hours_per_week, e.municipality) for e in published] == [
        (day, True, True, 36, "bergen"), (later, False, True, None, "bergen")]
    assert published[0].plan_id == plan.id and published[0].trajectory_id == plan.trajectory_id
    assert published[0].recorded_by == "municipality:bergen"


def test_the_same_confirmation_twice_records_nothing_and_another_for_that_day_is_a_conflict():
    plan = new_plan()
    day = STARTS + dt.timedelta(days=100)
    assert confirm(plan, day, hours_per_week=36)
    version = len(plan.pending_events)
    assert not confirm(plan, day + dt.timedelta(days=3), confirmed_on=day, hours_per_week=36)
    assert len(plan.pending_events) == version
    with pytest.raises(PlanConflict, match="already recorded"):
        confirm(plan, day, hours_per_week=20)
    assert len(plan.employer_confirmations) == 1


@pytest.mark.parametrize("overrides,field", [
    ({"confirmed_on": STARTS - dt.timedelta(days=1)}, "confirmed_on"),
    ({"confirmed_on": STARTS + dt.timedelta(days=31)}, "confirmed_on"),  # after today: the future
    ({"employed": False, "hours_per_week": 20}, "hours_per_week"),
])
def test_impossible_confirmations_name_the_field(overrides, field):
    plan = new_plan()
    plan.lose_job(lost_on=STARTS + dt.timedelta(days=10), reason="dismissed", today=STARTS + dt.timedelta(days=30))
    with pytest.raises(InvalidFact) as error:
        confirm(plan, STARTS + dt.timedelta(days=30), **overrides)
    assert error.value.field == field
    assert plan.employer_confirmations == []


def test_within_the_year_a_confirmation_must_agree_with_the_job_record():
    plan = new_plan()
    today = STARTS + dt.timedelta(days=120)
    lost = STARTS + dt.timedelta(days=60)
    with pytest.raises(PlanConflict, match="record when and why it was lost"):
        confirm(plan, today, confirmed_on=STARTS + dt.timedelta(days=30), employed=False)
    with pytest.raises(PlanConflict, match="another employer"):
        confirm(plan, today, confirmed_on=STARTS + dt.timedelta(days=30), same_employer=False)
    plan.lose_job(lost_on=lost, reason="dismissed", today=today)
    with pytest.raises(PlanConflict, match="no job on that date"):
        confirm(plan, today, confirmed_on=lost + dt.timedelta(days=5))
    assert confirm(plan, today, confirmed_on=lost + dt.timedelta(days=5), employed=False)
    plan.place_again(employer="Zorggroep Noord", hours_per_week=20, contract_type="fixed-term",
                     starts_on=lost + dt.timedelta(days=20))
    new_job = lost + dt.timedelta(days=30)
    with pytest.raises(PlanConflict, match="another employer"):
        confirm(plan, today, confirmed_on=new_job)  # the placement's employer no longer has them
    assert confirm(plan, today, confirmed_on=new_job, same_employer=False)
    # The placement's employer saying they left is true while they work elsewhere.
    assert confirm(plan, today, confirmed_on=new_job + dt.timedelta(days=1), employed=False)


# --- over HTTP ------------------------------------------------------------------------


def body(**overrides):
    return {"confirmed_on": "2027-01-19", "employed": True, "same_employer": True,
            "hours_per_week": 32} | overrides


def test_a_coach_records_an_employers_confirmation_and_reads_it_back(client, demo, plans, app):
    url = f"/plans/{plans['alkmaar']}/employer-confirmations"
    response = client.post(url, json=body(), headers=auth(demo))
    assert response.status_code == 201, response.text
    assert response.json() == {"plan_id": plans["alkmaar"], "confirmed_on": "2027-01-19", "recorded": True}
    plan = client.get(f"/plans/{plans['alkmaar']}", headers=auth(demo)).json()
    assert plan["employer_confirmations"] == [{"confirmed_on": "2027-01-19", "employed": True,
                                               "same_employer": True, "hours_per_week": 32,
                                               "recorded_by": "municipality:alkmaar"}]
    [event] = [e for e in published(app) if isinstance(e, EmploymentConfirmedByEmployer)]
    assert (event.plan_id, event.municipality) == (uuid.UUID(plans["alkmaar"]), "alkmaar")


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(client, demo, plans, app):
    url = f"/plans/{plans['alkmaar']}/employer-confirmations"
    headers = auth(demo) | {"Idempotency-Key": "employer-1"}
    first, again = (client.post(url, json=body(), headers=headers) for _ in range(2))
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    assert kinds(published(app)).count("EmploymentConfirmedByEmployer") == 1
    assert is_problem(client.post(url, json=body(hours_per_week=20), headers=headers), 422)
    # Without a key, the same confirmation again is recorded once all the same.
    repeat = client.post(url, json=body(), headers=auth(demo))
    assert repeat.status_code == 201 and repeat.json()["recorded"] is False
    assert kinds(published(app)).count("EmploymentConfirmedByEmployer") == 1


@pytest.mark.parametrize("overrides,field", [
    ({"confirmed_on": "2027-02-30"}, "confirmed_on"),
    ({"confirmed_on": "2027-01-21"}, "confirmed_on"),  # tomorrow
    ({"confirmed_on": "2027-01-03"}, "confirmed_on"),  # before the job started
    ({"hours_per_week": 61}, "hours_per_week"),
    ({"employed": "maybe"}, "employed"),
    ({"same_employer": None}, "same_employer"),
    ({"contact_person": "Mevrouw Jansen"}, "contact_person"),  # no names: extra fields are refused
])
def test_bad_confirmations_answer_422_naming_the_field(client, demo, plans, overrides, field):
    response = client.post(f"/plans/{plans['alkmaar']}/employer-confirmations", json=body(**overrides),
                           headers=auth(demo))
    assert is_problem(response, 422), response.text
    assert field in [e["field"].split(".")[-1] for e in response.json()["errors"]]
    assert "Jansen" not in response.text


def test_a_confirmation_the_plan_does_not_allow_is_a_409(client, demo, plans, app):
    url = f"/plans/{plans['alkmaar']}/employer-confirmations"
    response = client.post(url, json=body(employed=False, hours_per_week=None), headers=auth(demo))
    assert is_problem(response, 409)
    assert client.post(url, json=body(), headers=auth(demo)).status_code == 201
    assert is_problem(client.post(url, json=body(hours_per_week=20), headers=auth(demo)), 409)
    assert kinds(published(app)).count("EmploymentConfirmedByEmployer") == 1


def test_another_municipalitys_or_providers_plan_is_a_404(client, demo, plans, app):
    for plan in (plans["bergen"], str(uuid.uuid4())):
        assert is_problem(client.post(f"/plans/{plan}/employer-confirmations", json=body(),
                                      headers=auth(demo)), 404)
    assert is_problem(client.post(f"/plans/{plans['alkmaar']}/employer-confirmations", json=body(),
                                  headers=auth(demo, "bergen-coach")), 404)
    assert "EmploymentConfirmedByEmployer" not in kinds(published(app))


def test_after_the_year_the_coach_still_records_an_employers_confirmation(client, demo, plans, app, clock):
    clock.set(dt.date(2028, 3, 1))
    Scheduler(app).run_once()
    response = client.post(f"/plans/{plans['alkmaar']}/employer-confirmations",
                           json=body(confirmed_on="2028-01-10", employed=False, hours_per_week=None),
                           headers=auth(demo))
    assert response.status_code == 201, response.text
    assert client.get(f"/plans/{plans['alkmaar']}", headers=auth(demo)).json()["status"] == "completed"


# --- providers' signed webhooks ------------------------------------------------------


def test_a_provider_records_an_employers_confirmation_by_signed_webhook_once(client, demo, plans, app):
    url = f"/providers/agens/plans/{plans['agens']}/employer-confirmations"
    content, headers = signed(demo, "agens", body())
    first, again = (client.post(url, content=content, headers=headers) for _ in range(2))
    assert (first.status_code, again.status_code) == (202, 202), first.text
    assert first.json() == again.json() and first.json()["id"] == headers["webhook-id"]
    [event] = [e for e in published(app) if isinstance(e, EmploymentConfirmedByEmployer)]
    assert event.recorded_by == "provider:agens"
    other, other_headers = signed(demo, "agens", body(hours_per_week=20), msg_id=headers["webhook-id"])
    assert is_problem(client.post(url, content=other, headers=other_headers), 422)
    bad, bad_headers = signed(demo, "agens", body(employed=None))
    response = client.post(url, content=bad, headers=bad_headers)
    assert is_problem(response, 422) and [e["field"] for e in response.json()["errors"]] == ["employed"]
    conflict, conflict_headers = signed(demo, "agens", body(hours_per_week=20))
    assert is_problem(client.post(url, content=conflict, headers=conflict_headers), 409)


def test_a_providers_webhook_for_a_plan_it_does_not_coach_is_a_404(client, demo, plans, app):
    for provider, plan in (("dhg", plans["agens"]), ("agens", plans["alkmaar"])):
        content, headers = signed(demo, provider, body())
        response = client.post(f"/providers/{provider}/plans/{plan}/employer-confirmations",
                               content=content, headers=headers)
        assert is_problem(response, 404)
    content, headers = signed(demo, "agens", body())
    assert is_problem(client.post(f"/providers/agens/plans/{plans['agens']}/employer-confirmations",
                                  content=content + b" ", headers=headers), 401)
    assert "EmploymentConfirmedByEmployer" not in kinds(published(app))
