"""Coaching's HTTP API: bearer credentials for coaches and case systems, signed webhooks
for providers, tenant isolation, and problem+json for every error."""

import datetime as dt
import json
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts.access import Credentials, hash_token
from contracts.webhooks import MAX_BODY_BYTES, sign
from coaching.api import create_api
from coaching.application import CoachingApplication
from coaching.domain import plan_id
from coaching.scheduler import Scheduler
from infra.demo import write_credentials
from services.coaching.tests.support import Clock, Feed, Trajectory, kinds, published

STARTS = dt.date(2027, 1, 4)
TODAY = dt.date(2027, 1, 20)  # check-in 1 (due 18 January) can be recorded on time


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return Credentials.from_file(path), tokens


@pytest.fixture
def clock():
    return Clock(TODAY)


@pytest.fixture
def app(clock):
    return CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


@pytest.fixture
def plans(app):
    """Three plans: Alkmaar's coached by Agens, Alkmaar's own, and one in Bergen."""
    agens, own, bergen = Trajectory("alkmaar"), Trajectory("alkmaar"), Trajectory("bergen")
    Feed(app)(agens.opened(), agens.assigned("agens"), agens.placed(STARTS),
              own.opened(), own.placed(STARTS), bergen.opened(), bergen.placed(STARTS))
    return {name: str(plan_id(t.id, 1)) for name, t in
            (("agens", agens), ("alkmaar", own), ("bergen", bergen))}


@pytest.fixture
def client(app, demo):
    return TestClient(create_api(app, demo[0]))


def auth(demo, credential="alkmaar-coach"):
    return {"Authorization": f"Bearer {demo[1][credential]}"}


def check_in_body(**overrides):
    return {"check_in": 1, "held_on": "2027-01-19", "contact_made": True, "still_employed": True,
            "hours_per_week": 32, "issues_raised": ["travel"], "support": ["travel"],
            "next_step": "next-check-in"} | overrides


def signed(demo, provider, body, **kwargs):
    content = json.dumps(body).encode()
    return content, sign(demo[0].provider(provider).webhook_secret, content, **kwargs)


def is_problem(response, status):
    return (response.status_code == status
            and response.headers["content-type"] == "application/problem+json")


# --- coaches and case systems --------------------------------------------------------


def test_a_coach_records_a_check_in_and_reads_it_back(client, demo, plans):
    response = client.post(f"/plans/{plans['alkmaar']}/check-ins", json=check_in_body(),
                           headers=auth(demo))
    assert response.status_code == 201, response.text
    assert response.json() == {"plan_id": plans["alkmaar"], "check_in": 1}
    plan = client.get(f"/plans/{plans['alkmaar']}", headers=auth(demo, "alkmaar-case-system")).json()
    first = plan["check_ins"][0]
    assert (first["status"], first["recorded_by"], first["issues_raised"]) == (
        "recorded", "municipality:alkmaar", ["travel"])
    assert plan["coach_id"] == "municipality:alkmaar"


def test_the_same_check_in_twice_is_a_conflict(client, demo, plans):
    url = f"/plans/{plans['alkmaar']}/check-ins"
    client.post(url, json=check_in_body(), headers=auth(demo))
    assert is_problem(client.post(url, json=check_in_body(), headers=auth(demo)), 409)


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(client, demo, plans, app):
    url = f"/plans/{plans['alkmaar']}/check-ins"
    headers = auth(demo) | {"Idempotency-Key": "ci-1"}
    first = client.post(url, json=check_in_body(), headers=headers)
    again = client.post(url, json=check_in_body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    assert kinds(published(app)).count("CheckInRecorded") == 1
    other = client.post(url, json=check_in_body(held_on="2027-01-18"), headers=headers)
    assert is_problem(other, 422)


@pytest.mark.parametrize("credential", ["bergen-coach", "bergen-case-system"])
def test_another_municipality_sees_no_plan_of_alkmaar(client, demo, plans, credential):
    headers = auth(demo, credential)
    assert is_problem(client.get(f"/plans/{plans['alkmaar']}", headers=headers), 404)
    listed = client.get("/plans", headers=headers).json()["plans"]
    assert [p["plan_id"] for p in listed] == [plans["bergen"]]
    assert is_problem(client.get("/municipalities/alkmaar/overdue-check-ins", headers=headers), 404)


def test_another_municipality_cannot_record_on_alkmaars_plan(client, demo, plans):
    response = client.post(f"/plans/{plans['alkmaar']}/check-ins", json=check_in_body(),
                           headers=auth(demo, "bergen-coach"))
    assert is_problem(response, 404)


def test_who_may_do_what(client, demo, plans):
    url = f"/plans/{plans['alkmaar']}"
    assert is_problem(client.get(url), 401)
    assert is_problem(client.get(url, headers={"Authorization": "Bearer nonsense"}), 401)
    assert is_problem(client.get(url, headers=auth(demo, "alkmaar-staff")), 403)
    assert is_problem(client.post(f"{url}/check-ins", json=check_in_body(),
                                  headers=auth(demo, "alkmaar-case-system")), 403)
    # A provider's bearer token reads its own coachees only, and records through webhooks.
    mine = client.get("/plans", headers=auth(demo, "agens-provider")).json()["plans"]
    assert [p["plan_id"] for p in mine] == [plans["agens"]]
    assert is_problem(client.get(f"/plans/{plans['alkmaar']}", headers=auth(demo, "agens-provider")), 404)
    assert is_problem(client.post(f"{url}/check-ins", json=check_in_body(),
                                  headers=auth(demo, "agens-provider")), 403)


@pytest.mark.parametrize("field,value", [
    ("held_on", "2027-02-01"),  # after today
    ("held_on", "2026-12-31"),  # before the job started
    ("held_on", "2027-02-30"),
    ("check_in", 9),
    ("support", ["gardening"]),
    ("next_step", "retire"),
    ("hours_per_week", 90),
])
def test_bad_check_ins_answer_422_naming_the_field(client, demo, plans, field, value):
    response = client.post(f"/plans/{plans['alkmaar']}/check-ins",
                           json=check_in_body(**{field: value}), headers=auth(demo))
    assert is_problem(response, 422), response.text
    assert [e["field"].split(".")[0] for e in response.json()["errors"]] == [field]
    assert str(value) not in json.dumps(response.json()["errors"])


def test_unknown_or_malformed_plans_and_bodies_are_problems_never_a_500(client, demo, plans):
    headers = auth(demo)
    assert is_problem(client.get(f"/plans/{uuid.uuid4()}", headers=headers), 404)
    assert is_problem(client.get("/plans/not-a-uuid", headers=headers), 422)
    url = f"/plans/{plans['alkmaar']}/check-ins"
    assert is_problem(client.post(url, content=b"{", headers=headers | {"content-type": "application/json"}), 422)
    assert is_problem(client.post(url, json=[1, 2], headers=headers), 422)
    assert is_problem(client.post(url, json=check_in_body(extra="x"), headers=headers), 422)
    assert is_problem(client.delete(url, headers=headers), 405)
    assert is_problem(client.get("/coaches/somebody/overdue-check-ins", headers=headers), 422)
    assert is_problem(client.get("/municipalities/amsterdam/overdue-check-ins", headers=headers), 422)
    for path in ("check-ins", "job-losses", "placements", "reopen-requests", "follow-up-contacts"):
        response = client.post(f"/plans/{plans['alkmaar']}/{path}", json={"x": 1}, headers=headers)
        assert is_problem(response, 422)


def test_a_trajectory_id_is_no_plan_id(client, demo, plans):
    [plan] = client.get("/plans", headers=auth(demo, "bergen-coach")).json()["plans"]
    assert is_problem(client.get(f"/plans/{plan['trajectory_id']}", headers=auth(demo, "bergen-coach")), 404)
    listed = client.get(f"/plans?trajectory_id={plan['trajectory_id']}", headers=auth(demo, "bergen-coach"))
    assert [p["plan_id"] for p in listed.json()["plans"]] == [plans["bergen"]]


def test_job_lost_and_a_new_placement_and_a_reopen_request_by_the_coach(client, demo, plans, app, clock):
    url = f"/plans/{plans['alkmaar']}"
    clock.set(dt.date(2027, 5, 10))
    lost = client.post(f"{url}/job-losses", json={"lost_on": "2027-05-04", "reason": "contract-ended"},
                       headers=auth(demo))
    assert lost.status_code == 201, lost.text
    assert is_problem(client.post(f"{url}/job-losses", json={"lost_on": "2027-05-05", "reason": "other"},
                                  headers=auth(demo)), 409)
    reopen = client.post(f"{url}/reopen-requests", json={"reason": "job-lost", "requested_on": "2027-05-10"},
                         headers=auth(demo))
    assert reopen.status_code == 201 and uuid.UUID(reopen.json()["request_id"])
    placed = client.post(f"{url}/placements", headers=auth(demo), json={
        "employer": "Zorggroep Noord", "hours_per_week": 24, "contract_type": "permanent",
        "starts_on": "2027-06-04"})
    assert placed.status_code == 201 and placed.json()["ends_on"] == "2028-01-04"
    assert kinds(published(app))[-3:] == ["JobLost", "TrajectoryReopenRequested", "PlacedAgain"]
    far = client.post(f"{url}/placements", headers=auth(demo), json={
        "employer": "Later BV", "hours_per_week": 24, "contract_type": "other", "starts_on": "2027-12-30"})
    assert is_problem(far, 422)


def test_overdue_check_ins_per_coach_and_per_municipality(client, demo, plans, app, clock):
    clock.set(dt.date(2027, 1, 27))  # check-in 1 was due 18 January, overdue from the 26th
    assert Scheduler(app).run_once() == 3
    by_municipality = client.get("/municipalities/alkmaar/overdue-check-ins", headers=auth(demo)).json()
    assert sorted(o["plan_id"] for o in by_municipality["overdue"]) == sorted([plans["agens"], plans["alkmaar"]])
    by_coach = client.get("/coaches/provider:agens/overdue-check-ins", headers=auth(demo)).json()
    assert [(o["plan_id"], o["check_in"], o["due_on"]) for o in by_coach["overdue"]] == [
        (plans["agens"], 1, "2027-01-18")]
    own = client.get("/coaches/municipality:alkmaar/overdue-check-ins", headers=auth(demo)).json()
    assert [o["plan_id"] for o in own["overdue"]] == [plans["alkmaar"]]
    # Bergen's coach sees Bergen's only, even asking for Alkmaar's coach.
    other = client.get("/coaches/municipality:alkmaar/overdue-check-ins", headers=auth(demo, "bergen-coach"))
    assert other.json()["overdue"] == []
    provider = client.get("/coaches/provider:agens/overdue-check-ins", headers=auth(demo, "agens-provider"))
    assert [o["plan_id"] for o in provider.json()["overdue"]] == [plans["agens"]]
    assert is_problem(client.get("/coaches/provider:dhg/overdue-check-ins",
                                 headers=auth(demo, "agens-provider")), 404)


def test_follow_up_contacts_come_after_the_year_and_from_the_municipality(client, demo, plans, app, clock):
    url = f"/plans/{plans['alkmaar']}/follow-up-contacts"
    body = {"contacted_on": "2028-03-01", "contact_made": True, "employed": True, "same_employer": True}
    clock.set(dt.date(2027, 6, 1))
    assert is_problem(client.post(url, json=body | {"contacted_on": "2027-06-01"}, headers=auth(demo)), 409)
    clock.set(dt.date(2028, 3, 1))
    Scheduler(app).run_once()
    assert client.post(url, json=body, headers=auth(demo)).status_code == 201
    plan = client.get(f"/plans/{plans['alkmaar']}", headers=auth(demo)).json()
    assert plan["status"] == "completed" and len(plan["follow_up_contacts"]) == 1


def test_a_coach_employed_by_a_provider_sees_and_records_only_the_providers_coachees(app, plans):
    token = "agens-coach-token"
    credentials = Credentials.from_entries([{
        "id": "agens-coach-alkmaar", "kind": "coach", "municipality": "alkmaar", "provider": "agens",
        "scopes": ["coaching:read", "coaching:write"], "token_sha256": hash_token(token)}])
    client = TestClient(create_api(app, credentials))
    headers = {"Authorization": f"Bearer {token}"}
    assert [p["plan_id"] for p in client.get("/plans", headers=headers).json()["plans"]] == [plans["agens"]]
    assert is_problem(client.post(f"/plans/{plans['alkmaar']}/check-ins", json=check_in_body(),
                                  headers=headers), 404)
    mine = client.post(f"/plans/{plans['agens']}/check-ins", json=check_in_body(), headers=headers)
    assert mine.status_code == 201
    assert client.get(f"/plans/{plans['agens']}", headers=headers).json()["check_ins"][0]["recorded_by"] == "provider:agens"


# --- providers' signed webhooks ------------------------------------------------------


def test_a_provider_records_a_check_in_by_signed_webhook(client, demo, plans, app):
    content, headers = signed(demo, "agens", check_in_body())
    response = client.post(f"/providers/agens/plans/{plans['agens']}/check-ins", content=content,
                           headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["id"] == headers["webhook-id"] and response.json()["check_in"] == 1
    assert app.plan(uuid.UUID(plans["agens"]))["check_ins"][0]["recorded_by"] == "provider:agens"


def test_a_replayed_webhook_has_no_second_effect_and_another_body_under_its_id_is_refused(client, demo, plans, app):
    url = f"/providers/agens/plans/{plans['agens']}/check-ins"
    content, headers = signed(demo, "agens", check_in_body())
    first = client.post(url, content=content, headers=headers)
    again = client.post(url, content=content, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202) and first.json() == again.json()
    assert kinds(published(app)).count("CheckInRecorded") == 1
    other, other_headers = signed(demo, "agens", check_in_body(held_on="2027-01-18"),
                                  msg_id=headers["webhook-id"])
    assert is_problem(client.post(url, content=other, headers=other_headers), 422)


def test_webhooks_with_a_bad_signature_or_from_another_provider_are_refused(client, demo, plans, app):
    url = f"/providers/agens/plans/{plans['agens']}/check-ins"
    content, headers = signed(demo, "agens", check_in_body())
    assert is_problem(client.post(url, content=content + b" ", headers=headers), 401)
    assert is_problem(client.post(url, content=content,
                                  headers=headers | {"webhook-signature": "v1,AAAA"}), 401)
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    old, old_headers = signed(demo, "agens", check_in_body(), timestamp=stale)
    assert is_problem(client.post(url, content=old, headers=old_headers), 401)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    ahead, ahead_headers = signed(demo, "agens", check_in_body(), timestamp=future)
    assert is_problem(client.post(url, content=ahead, headers=ahead_headers), 401)
    oversized, big_headers = signed(demo, "agens", check_in_body(note="x" * MAX_BODY_BYTES))
    assert is_problem(client.post(url, content=oversized, headers=big_headers), 413)
    # DHG's own signature is fine, but the plan is Agens's coachee: as if it did not exist.
    dhg, dhg_headers = signed(demo, "dhg", check_in_body())
    assert is_problem(client.post(f"/providers/dhg/plans/{plans['agens']}/check-ins", content=dhg,
                                  headers=dhg_headers), 404)
    # Agens's signature on DHG's path is not DHG's.
    assert is_problem(client.post(f"/providers/dhg/plans/{plans['agens']}/check-ins", content=content,
                                  headers=headers), 401)
    # A municipality-coached plan is no provider's.
    own, own_headers = signed(demo, "agens", check_in_body())
    assert is_problem(client.post(f"/providers/agens/plans/{plans['alkmaar']}/check-ins", content=own,
                                  headers=own_headers), 404)
    assert is_problem(client.post(url, content=content, headers=headers | {"content-type": "text/plain"}), 415)
    assert is_problem(client.post("/providers/unknown/plans/x/check-ins", content=content, headers=headers), 401)
    assert "CheckInRecorded" not in kinds(published(app))


def test_a_provider_webhook_with_a_bad_body_names_the_field(client, demo, plans):
    content, headers = signed(demo, "agens", check_in_body(support=["gardening"]))
    response = client.post(f"/providers/agens/plans/{plans['agens']}/check-ins", content=content,
                           headers=headers)
    assert is_problem(response, 422)
    assert [e["field"].split(".")[0] for e in response.json()["errors"]] == ["support"]


def test_a_provider_reports_job_loss_a_new_job_and_a_reopen_request(client, demo, plans, app, clock):
    clock.set(dt.date(2027, 5, 10))
    base = f"/providers/agens/plans/{plans['agens']}"
    for path, body in (("job-losses", {"lost_on": "2027-05-04", "reason": "dismissed"}),
                       ("reopen-requests", {"reason": "job-lost", "requested_on": "2027-05-10"}),
                       ("placements", {"employer": "Zorggroep Noord", "hours_per_week": 20,
                                       "contract_type": "fixed-term", "starts_on": "2027-05-20"})):
        content, headers = signed(demo, "agens", body)
        response = client.post(f"{base}/{path}", content=content, headers=headers)
        assert response.status_code == 202, response.text
    events = published(app)
    assert kinds(events)[-3:] == ["JobLost", "TrajectoryReopenRequested", "PlacedAgain"]
    assert events[-2].requested_by == "provider:agens"


def test_a_coach_credential_bound_to_no_municipality_or_provider_may_not_record(app, plans):
    credentials = Credentials.from_entries([{
        "id": "floating-coach", "kind": "coach", "scopes": ["coaching:read", "coaching:write"],
        "token_sha256": hash_token("floating")}])
    client = TestClient(create_api(app, credentials))
    response = client.post(f"/plans/{plans['alkmaar']}/check-ins", json=check_in_body(),
                           headers={"Authorization": "Bearer floating"})
    assert is_problem(response, 403)
