"""The HTTP API on the in-memory store: providers' signed reports (Standard Webhooks,
idempotent on webhook-id, 404 outside their own assignments), who reads what, audited
changes to contracts, and problem+json for every error — never a 500."""

import datetime as dt
import json
import uuid

import pytest

from contracts.problems import MEDIA_TYPE
from contracts.webhooks import MAX_BODY_BYTES
from services.trajectory.tests.conftest import auth, post_report, refer, signed

LEAD = "Directe bemiddeling en Nazorg"


@pytest.fixture
def trajectory(app):
    """A Focus2Move trajectory in Alkmaar, assigned (to Agens, who has the most places)."""
    trajectory_id = refer(app)
    assert app.trajectory(trajectory_id)["assignments"][0]["provider"] == "agens"
    return trajectory_id


def plan(**overrides):
    return {"type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-10"} | overrides


def is_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    return response.json()


# --- reports in ---------------------------------------------------------------------------


def test_a_provider_reports_on_its_own_trajectory_and_hears_the_state_and_next_steps(client, provider_secrets, trajectory):
    response = post_report(client, provider_secrets, "agens", trajectory, plan(), msg_id="msg_plan_1")
    assert response.status_code == 202
    assert response.json() | {} == {"report_id": "msg_plan_1", "trajectory_id": str(trajectory),
                                    "state": "active", "allowed_next": response.json()["allowed_next"]}
    assert "placed-in-job" in response.json()["allowed_next"]


def test_the_same_webhook_id_returns_the_first_answer_and_records_nothing_new(client, provider_secrets, trajectory, app):
    first = post_report(client, provider_secrets, "agens", trajectory, plan(), msg_id="msg_twice")
    recorded = app.recorder.max_notification_id()
    again = post_report(client, provider_secrets, "agens", trajectory, plan(), msg_id="msg_twice")
    assert again.status_code == 202 and again.json() == first.json()
    assert app.recorder.max_notification_id() == recorded


def test_the_same_webhook_id_with_another_body_is_a_422(client, provider_secrets, trajectory):
    post_report(client, provider_secrets, "agens", trajectory, plan(), msg_id="msg_reused")
    other = post_report(client, provider_secrets, "agens", trajectory, plan(agreed_on="2008-02-11"),
                        msg_id="msg_reused")
    assert is_problem(other, 422)["errors"][0]["field"] == "Idempotency-Key"


def test_webhook_ids_are_scoped_per_provider(client, provider_secrets, app, trajectory):
    other = refer(app, programme="reintegration", municipality="bergen", referred_on=dt.date(2007, 3, 1))
    body = plan(discipline="Voortraject", agreed_on="2007-03-05")
    assert post_report(client, provider_secrets, "agens", trajectory, plan(), msg_id="msg_same").status_code == 202
    assert post_report(client, provider_secrets, "dhg", other, body, msg_id="msg_same").status_code == 202


def test_a_bad_signature_is_a_401_and_nothing_is_recorded(client, provider_secrets, trajectory, app):
    content, headers = signed(provider_secrets["agens"], plan())
    headers["webhook-signature"] = "v1," + "A" * 44
    recorded = app.recorder.max_notification_id()
    response = client.post(f"/providers/agens/trajectories/{trajectory}/reports", content=content, headers=headers)
    assert is_problem(response, 401)["title"] == "Invalid webhook signature"
    assert app.recorder.max_notification_id() == recorded


def test_a_body_changed_after_signing_is_a_401(client, provider_secrets, trajectory):
    content, headers = signed(provider_secrets["agens"], plan())
    tampered = content.replace(b"2008-02-10", b"2008-02-11")
    response = client.post(f"/providers/agens/trajectories/{trajectory}/reports", content=tampered, headers=headers)
    is_problem(response, 401)


def test_a_stale_timestamp_is_a_401(client, provider_secrets, trajectory):
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    response = post_report(client, provider_secrets, "agens", trajectory, plan(), timestamp=stale)
    assert "too old" in is_problem(response, 401)["detail"]


def test_a_timestamp_from_the_future_is_a_401_and_nothing_is_recorded(client, provider_secrets, trajectory, app):
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    recorded = app.recorder.max_notification_id()
    response = post_report(client, provider_secrets, "agens", trajectory, plan(), timestamp=future)
    assert "too new" in is_problem(response, 401)["detail"]
    assert app.recorder.max_notification_id() == recorded


def test_a_report_signed_with_another_providers_secret_is_a_401(client, provider_secrets, trajectory):
    content, headers = signed(provider_secrets["dhg"], plan())
    response = client.post(f"/providers/agens/trajectories/{trajectory}/reports", content=content, headers=headers)
    is_problem(response, 401)


def test_another_providers_trajectory_is_a_404(client, provider_secrets, trajectory):
    response = post_report(client, provider_secrets, "dhg", trajectory, plan())
    assert is_problem(response, 404)["title"] == "Trajectory not found"


def test_a_discipline_not_assigned_to_the_provider_is_a_404(client, provider_secrets, trajectory):
    response = post_report(client, provider_secrets, "agens", trajectory, plan(discipline="Schuldhulpverlening"))
    assert is_problem(response, 404)["title"] == "Discipline not assigned"


def test_an_unknown_or_malformed_trajectory_id_is_a_404(client, provider_secrets):
    assert post_report(client, provider_secrets, "agens", uuid.uuid4(), plan()).status_code == 404
    is_problem(post_report(client, provider_secrets, "agens", "not-a-uuid", plan()), 404)


def test_a_report_that_does_not_fit_is_a_409_naming_the_state_and_next_steps_and_is_remembered(
        client, provider_secrets, trajectory):
    body = {"type": "mediation-failed", "discipline": LEAD, "attempted_on": "2008-02-20", "reason": "not-hired"}
    problem = is_problem(post_report(client, provider_secrets, "agens", trajectory, body, msg_id="msg_early"), 409)
    assert problem["state"] == "assigned"
    assert problem["allowed"] == ["plan-agreed", "obstacle-identified", "closed", "contract-started"]
    post_report(client, provider_secrets, "agens", trajectory, plan())
    # The same message again: the first answer, although the state now allows it.
    assert is_problem(post_report(client, provider_secrets, "agens", trajectory, body, msg_id="msg_early"), 409) == problem


def test_work_first_over_http(client, provider_secrets, trajectory):
    post_report(client, provider_secrets, "agens", trajectory, plan())
    schooling = {"type": "schooling-started", "discipline": LEAD, "starts_on": "2008-03-01",
                 "relevance": "shortage-occupation", "occupation": "lasser"}
    problem = is_problem(post_report(client, provider_secrets, "agens", trajectory, schooling), 409)
    assert problem["rule"] == "work-first" and "mediation-failed" in problem["allowed"]
    failed = {"type": "mediation-failed", "discipline": LEAD, "attempted_on": "2008-02-25",
              "reason": "no-suitable-vacancy"}
    assert post_report(client, provider_secrets, "agens", trajectory, failed).status_code == 202
    assert post_report(client, provider_secrets, "agens", trajectory, schooling).status_code == 202


def test_an_unknown_obstacle_is_a_404(client, provider_secrets, trajectory):
    post_report(client, provider_secrets, "agens", trajectory, plan())
    post_report(client, provider_secrets, "agens", trajectory, {
        "type": "obstacle-identified", "discipline": LEAD, "obstacle_id": str(uuid.uuid4()),
        "kind": "other", "identified_on": "2008-02-12"})
    response = post_report(client, provider_secrets, "agens", trajectory, {
        "type": "obstacle-resolved", "discipline": LEAD, "obstacle_id": str(uuid.uuid4()),
        "outcome": "resolved", "resolved_on": "2008-03-01"})
    assert is_problem(response, 404)["title"] == "Obstacle not found"


@pytest.mark.parametrize("body, field", [
    ({"type": "plan-agreed", "discipline": LEAD}, "plan-agreed.agreed_on"),
    ({"type": "teleported", "discipline": LEAD}, "body"),
    (plan(extra="field"), "plan-agreed.extra"),
    (plan(agreed_on="2008-02-31"), "plan-agreed.agreed_on"),
    (plan(disciplines=["Koken"]), "disciplines"),
    (plan(agreed_on="2027-01-01"), "agreed_on"),  # after today (the injected clock)
    (plan(agreed_on="2008-01-01"), "agreed_on"),  # before the trajectory opened
    ({"type": "placed-in-job", "discipline": LEAD, "employer": "X\u0000Y", "hours_per_week": 32,
      "contract_type": "permanent", "starts_on": "2008-05-01"}, "placed-in-job.employer"),
    ({"type": "placed-in-job", "discipline": LEAD, "employer": "X", "hours_per_week": 99,
      "contract_type": "permanent", "starts_on": "2008-05-01"}, "placed-in-job.hours_per_week"),
])
def test_malformed_or_impossible_reports_are_422_problems_that_name_the_field_not_the_value(
        client, provider_secrets, trajectory, body, field):
    problem = is_problem(post_report(client, provider_secrets, "agens", trajectory, body), 422)
    assert problem["errors"][0]["field"] == field
    assert "teleported" not in json.dumps(problem) and "X\\u0000Y" not in json.dumps(problem)


def test_a_body_that_is_not_json_or_not_declared_json_or_too_large(client, provider_secrets, trajectory):
    content, headers = signed(provider_secrets["agens"], b"{not json")
    url = f"/providers/agens/trajectories/{trajectory}/reports"
    is_problem(client.post(url, content=content, headers=headers), 422)
    content, headers = signed(provider_secrets["agens"], plan())
    is_problem(client.post(url, content=content, headers=headers | {"content-type": "text/plain"}), 415)
    big = json.dumps(plan(padding="x" * MAX_BODY_BYTES)).encode()
    content, headers = signed(provider_secrets["agens"], big)
    is_problem(client.post(url, content=content, headers=headers), 413)


def test_an_unknown_provider_is_a_401(client, provider_secrets, trajectory):
    content, headers = signed(provider_secrets["agens"], plan())
    is_problem(client.post(f"/providers/randstad/trajectories/{trajectory}/reports", content=content,
                           headers=headers), 401)


# --- who reads what ------------------------------------------------------------------------


def test_a_municipality_reads_its_own_trajectories_and_gets_404_for_anothers(client, tokens, trajectory):
    own = client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "alkmaar-case-system"))
    assert own.status_code == 200 and own.json()["assignments"][0]["provider"] == "agens"
    for other in ("bergen", "castricum", "heerhugowaard", "heiloo"):
        is_problem(client.get(f"/trajectories/{trajectory}", headers=auth(tokens, f"{other}-case-system")), 404)
        is_problem(client.get(f"/trajectories/{trajectory}/history", headers=auth(tokens, f"{other}-case-system")), 404)


def test_a_provider_reads_only_trajectories_assigned_to_it_and_only_its_own_part(client, tokens, trajectory, provider_secrets, app):
    post_report(client, provider_secrets, "agens", trajectory, plan(disciplines=["Maatschappelijk werk"]))
    app.run_desk()
    agens = client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "agens-provider")).json()
    assert [a["provider"] for a in agens["assignments"]] == ["agens"]
    assert "refusals" not in agens and "waiting" not in agens
    social_work = client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "alexander-calder-provider")).json()
    assert [a["discipline"] for a in social_work["assignments"]] == ["Maatschappelijk werk"]
    is_problem(client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "dhg-provider")), 404)
    is_problem(client.get(f"/trajectories/{trajectory}/history", headers=auth(tokens, "agens-provider")), 403)
    caseload = client.get("/caseload", headers=auth(tokens, "agens-provider")).json()
    assert {"trajectory_id": str(trajectory), "programme": "focus2move", "discipline": LEAD} in caseload


def test_an_auditor_replays_any_trajectory_fact_by_fact_and_as_it_was(client, tokens, trajectory, provider_secrets):
    recorded_before_plan = dt.datetime.now(dt.UTC)
    post_report(client, provider_secrets, "agens", trajectory, plan())
    history = client.get(f"/trajectories/{trajectory}/history", headers=auth(tokens, "esf-auditor")).json()
    assert [f["fact"] for f in history] == ["Opened", "Assigned", "PlanAgreed"]
    assert history[2]["by"] == "agens" and history[1]["by"] == "desk"
    then = client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "esf-auditor"),
                      params={"as_of": recorded_before_plan.isoformat()}).json()
    assert then["state"] == "assigned"
    is_problem(client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "esf-auditor"),
                          params={"as_of": "2000-01-01T00:00:00Z"}), 404)


def test_reading_needs_a_token_and_a_reading_scope(client, tokens, trajectory):
    is_problem(client.get(f"/trajectories/{trajectory}"), 401)
    is_problem(client.get(f"/trajectories/{trajectory}", headers={"Authorization": "Bearer nonsense"}), 401)
    is_problem(client.get(f"/trajectories/{trajectory}", headers=auth(tokens, "alkmaar-coach")), 403)


def test_reference_data_and_capacity_are_readable_and_providers_see_their_own_contracts(client, tokens):
    programmes = client.get("/programmes", headers=auth(tokens, "region-staff")).json()
    assert [p["yearly_volume"] for p in programmes["programmes"]] == [325, 75, 175]
    contracts = client.get("/contracts", headers=auth(tokens, "nieuwland-provider")).json()
    assert {c["provider"] for c in contracts} == {"nieuwland"}
    capacity = client.get("/capacity", headers=auth(tokens, "heiloo-case-system")).json()
    assert all("waiting_here" in c for c in capacity)


# --- audited changes ---------------------------------------------------------------------------


def test_a_contract_manager_changes_places_and_the_change_is_audited(client, tokens):
    admin = auth(tokens, "region-contract-manager")
    [voortraject] = [c for c in client.get("/contracts", headers=admin).json()
                     if (c["provider"], c["discipline"]) == ("agens", "Voortraject")]
    url = f"/contracts/{voortraject['contract_id']}"
    changed = client.post(f"{url}/places", headers=admin,
                          json={"places": 9, "on": "2007-01-01", "reason": "demand in Alkmaar"})
    assert changed.status_code == 200 and changed.json()["places"] == 9
    extended = client.post(f"{url}/extension", headers=admin,
                           json={"ends_on": "2008-12-31", "reason": "bridging to the next tender"})
    assert extended.json()["ends_on"] == "2008-12-31"
    changes = client.get(url, headers=auth(tokens, "esf-auditor")).json()["changes"]
    assert [(c["change"], c["by"]) for c in changes] == [
        ("awarded", "seed"), ("places", "region-contract-manager"), ("ends_on", "region-contract-manager")]
    volume = client.post("/programmes/reintegration/volume", headers=admin,
                         json={"yearly_volume": 90, "on": "2007-01-01", "reason": "council decision"})
    assert volume.json()["yearly_volume"] == 90 and volume.json()["changes"][0]["from"] == 75


def test_changing_contracts_needs_the_contracts_write_scope(client, tokens):
    [contract, *_] = client.get("/contracts", headers=auth(tokens, "region-staff")).json()
    body = {"places": 9, "on": "2007-01-01", "reason": "why not"}
    for who in ("region-staff", "alkmaar-case-system", "agens-provider"):
        is_problem(client.post(f"/contracts/{contract['contract_id']}/places", headers=auth(tokens, who), json=body), 403)


def test_invalid_contract_changes_are_problems(client, tokens):
    admin = auth(tokens, "region-contract-manager")
    [contract, *_] = client.get("/contracts", headers=admin).json()
    url = f"/contracts/{contract['contract_id']}"
    is_problem(client.post(f"{url}/places", headers=admin, json={"places": -1, "on": "2007-01-01", "reason": "x" * 5}), 422)
    is_problem(client.post(f"{url}/extension", headers=admin, json={"ends_on": "2007-01-01", "reason": "shorter"}), 422)
    is_problem(client.post(f"/contracts/{uuid.uuid4()}/places", headers=admin,
                           json={"places": 1, "on": "2007-01-01", "reason": "ghost"}), 404)
    award = {"provider": "agens", "programme": "reintegration", "discipline": "Voortraject",
             "municipalities": ["alkmaar"], "starts_on": "2006-01-01", "ends_on": "2008-04-30",
             "places": 3, "tariff_eur": 1400, "reason": "again"}
    is_problem(client.post("/contracts", headers=admin, json=award), 409)
    is_problem(client.post("/contracts", headers=admin, json=award | {"provider": "randstad"}), 422)
    is_problem(client.post("/contracts", headers=admin, json=award | {"programme": "yoga"}), 404)
    is_problem(client.post("/contracts", headers=admin, json=award | {"provider": "serin", "discipline": "Koken"}), 422)
    created = client.post("/contracts", headers=admin, json=award | {"provider": "serin"})
    assert created.status_code == 201 and created.json()["places"] == 3


# --- never a 500 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("get", "/trajectories/{t}"), ("get", "/trajectories/{t}/history"), ("get", "/trajectories/x"),
    ("get", "/contracts/x"), ("post", "/contracts"), ("post", "/contracts/{t}/places"),
    ("post", "/programmes/x/volume"), ("post", "/subscriptions"), ("get", "/subscriptions/x"),
    ("delete", "/subscriptions/{t}"), ("get", "/deliveries/{t}"), ("post", "/deliveries/{t}/retry"),
    ("get", "/subscriptions/{t}/deliveries"), ("post", "/providers/agens/trajectories/{t}/reports"),
])
@pytest.mark.parametrize("body", [None, b"", b"{}", b"[]", b"\xff\xfe", b'{"places": "many"}'])
def test_garbage_anywhere_is_a_problem_never_a_500(client, tokens, method, path, body):
    for who in (None, "region-contract-manager", "agens-provider", "alkmaar-case-system"):
        headers = ({"content-type": "application/json"} | (auth(tokens, who) if who else {}))
        response = client.request(method.upper(), path.format(t=uuid.uuid4()), content=body, headers=headers)
        assert response.status_code < 500, (who, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith(MEDIA_TYPE)
