import datetime as dt

import pytest
from fastapi.testclient import TestClient

from contracts.events import ClientReferred
from intake.api import create_api
from intake.application import IntakeApplication, integration_events
from intake.domain import client_pseudonym, is_valid_bsn

BSN = "111222333"  # passes the 11-test; made up for tests


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999999990"])
def test_bsns_that_pass_the_eleven_test(bsn):
    assert is_valid_bsn(bsn)


@pytest.mark.parametrize("bsn", ["123456789", "12345678", "1234567890", "abcdefghi", "000000000", ""])
def test_bsns_that_fail_the_eleven_test(bsn):
    assert not is_valid_bsn(bsn)


def test_the_pseudonym_is_stable_per_key_and_differs_between_keys():
    assert client_pseudonym(BSN, b"k1") == client_pseudonym(BSN, b"k1")
    assert client_pseudonym(BSN, b"k1") != client_pseudonym(BSN, b"k2")
    assert BSN not in str(client_pseudonym(BSN, b"k1")).replace("-", "")


@pytest.fixture
def app():
    return IntakeApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, pseudonym_key=b"test")


def refer(app, **overrides):
    fields = dict(bsn=BSN, municipality="alkmaar", programme="focus2move", benefit="bijstand",
                  referred_on=dt.date(2026, 11, 2), caseworker_id="cw-17")
    return app.refer(**(fields | overrides))


def test_a_referral_becomes_client_referred_without_personal_data(app):
    referral = refer(app)
    notification = app.recorder.select_notifications(None, 10)[0]
    [(municipality, event)] = integration_events(app.mapper.to_domain_event(notification))
    assert municipality == "alkmaar"
    assert isinstance(event, ClientReferred)
    assert str(event.trajectory_id) == referral["trajectory_id"]
    assert BSN not in event.model_dump_json()


def test_the_same_person_referred_twice_has_one_pseudonym(app):
    assert refer(app)["client_id"] == refer(app, programme="reintegration")["client_id"]


@pytest.fixture
def client(app):
    return TestClient(create_api(app))


def valid_body(**overrides):
    return {"bsn": BSN, "municipality": "bergen", "programme": "social-activation",
            "benefit": "wao", "referred_on": "2026-10-01", "caseworker_id": "cw-1"} | overrides


def test_post_a_referral_and_read_it_back(client):
    created = client.post("/referrals", json=valid_body())
    assert created.status_code == 201
    read = client.get(f"/referrals/{created.json()['referral_id']}")
    assert read.status_code == 200
    assert read.json()["municipality"] == "bergen"
    assert "bsn" not in read.json()


@pytest.mark.parametrize("field,value", [
    ("bsn", "123456789"), ("municipality", "amsterdam"), ("programme", "golf"),
    ("benefit", "ww"), ("referred_on", "2999-01-01"), ("referred_on", "2026-02-30"),
])
def test_bad_fields_answer_problem_json_naming_the_field_not_the_value(client, field, value):
    response = client.post("/referrals", json=valid_body(**{field: value}))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == [field]
    assert value not in response.text


def test_an_unknown_referral_is_a_404_problem(client):
    response = client.get("/referrals/3f2b0c1e-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_malformed_id_or_body_is_a_422_problem_never_a_500(client):
    assert client.get("/referrals/not-a-uuid").status_code == 422
    assert client.post("/referrals", content=b"{", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/referrals", json=[1, 2]).status_code == 422
