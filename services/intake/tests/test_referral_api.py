import uuid

import pytest

from contracts.municipalities import MUNICIPALITIES
from services.intake.tests.conftest import auth

BSN = "111222333"  # made up; passes the 11-test
NAME = "Fenna Testpersoon"


def body(**overrides):
    return {"bsn": BSN, "name": NAME, "date_of_birth": "1980-04-12", "municipality": "alkmaar",
            "programme": "focus2move", "benefit": "bijstand", "distance_to_labour_market": "large",
            "referred_on": "2026-11-02", "caseworker_id": "cw-17"} | overrides


def test_an_eligible_referral_is_referred_and_keeps_no_personal_data_in_its_answer(client, tokens):
    response = client.post("/referrals", json=body(), headers=auth(tokens))
    assert response.status_code == 201
    answer = response.json()
    assert answer["status"] == "referred" and answer["trajectory_id"]
    assert BSN not in response.text and NAME not in response.text and "1980" not in response.text
    read = client.get(f"/referrals/{answer['referral_id']}", headers=auth(tokens))
    assert read.json()["status"] == "referred"


def test_an_ineligible_referral_is_recorded_as_rejected_with_its_reasons(client, tokens):
    response = client.post("/referrals", headers=auth(tokens), json=body(
        programme="reintegration", benefit="bijstand"))
    assert response.status_code == 201
    answer = response.json()
    assert answer["status"] == "rejected"
    assert {r["code"] for r in answer["reasons"]} == {
        "reintegration-only-for-nugger-or-anw", "reintegration-needs-uwv-registration"}
    assert all(r["reason"] for r in answer["reasons"])


def test_a_second_open_referral_of_the_same_person_to_the_same_programme_is_a_409(client, tokens):
    first = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    second = client.post("/referrals", json=body(caseworker_id="cw-2"), headers=auth(tokens))
    assert second.status_code == 409
    assert second.json()["existing"] == f"/referrals/{first['referral_id']}"
    other_programme = client.post("/referrals", headers=auth(tokens), json=body(
        programme="social-activation"))
    assert other_programme.status_code == 201


def test_after_withdrawal_the_person_may_be_referred_again(client, tokens):
    first = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    withdrawn = client.post(f"/referrals/{first['referral_id']}/withdrawal", headers=auth(tokens),
                            json={"withdrawn_on": "2026-11-10", "reason": "error"})
    assert withdrawn.json()["status"] == "withdrawn"
    again = client.post(f"/referrals/{first['referral_id']}/withdrawal", headers=auth(tokens),
                        json={"withdrawn_on": "2026-11-10", "reason": "error"})
    assert again.status_code == 409 and again.json()["state"] == "withdrawn"
    assert client.post("/referrals", json=body(), headers=auth(tokens)).status_code == 201


def test_the_same_idempotency_key_and_body_returns_the_first_answer_and_records_nothing(client, tokens, app):
    headers = auth(tokens) | {"Idempotency-Key": "case-4711"}
    first = client.post("/referrals", json=body(), headers=headers)
    recorded = app.recorder.max_notification_id()
    again = client.post("/referrals", json=body(), headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert app.recorder.max_notification_id() == recorded


def test_the_same_idempotency_key_with_another_body_is_a_422(client, tokens):
    headers = auth(tokens) | {"Idempotency-Key": "case-4712"}
    client.post("/referrals", json=body(), headers=headers)
    other = client.post("/referrals", json=body(programme="social-activation"), headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


def test_idempotency_keys_are_per_client_application(client, tokens):
    key = {"Idempotency-Key": "shared-key"}
    alkmaar = client.post("/referrals", json=body(), headers=auth(tokens) | key)
    bergen = client.post("/referrals", headers=auth(tokens, "bergen-case-system") | key,
                         json=body(municipality="bergen", programme="social-activation"))
    assert alkmaar.status_code == bergen.status_code == 201
    assert alkmaar.json()["referral_id"] != bergen.json()["referral_id"]


@pytest.mark.parametrize("owner", MUNICIPALITIES)
def test_no_municipality_sees_or_changes_another_ones_referral(client, tokens, owner):
    programme = "focus2move" if owner == "alkmaar" else "social-activation"
    created = client.post("/referrals", headers=auth(tokens, f"{owner}-case-system"),
                          json=body(municipality=owner, programme=programme)).json()
    path = f"/referrals/{created['referral_id']}"
    assert client.get(path, headers=auth(tokens, f"{owner}-case-system")).status_code == 200
    for other in set(MUNICIPALITIES) - {owner}:
        headers = auth(tokens, f"{other}-case-system")
        assert client.get(path, headers=headers).status_code == 404
        withdrawal = client.post(f"{path}/withdrawal", headers=headers,
                                 json={"withdrawn_on": "2026-11-10", "reason": "error"})
        assert withdrawal.status_code == 404
        assert client.get(f"/referrals/{uuid.uuid4()}", headers=headers).status_code == 404


def test_a_municipality_refers_only_its_own_clients(client, tokens):
    response = client.post("/referrals", json=body(municipality="heiloo"), headers=auth(tokens))
    assert response.status_code == 403


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
def test_without_a_valid_token_the_answer_is_401(client, headers):
    response = client.post("/referrals", json=body(), headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_credentials_of_other_kinds_may_not_refer(client, tokens):
    for credential in ("alkmaar-coach", "agens-provider", "esf-auditor", "alkmaar-staff"):
        assert client.post("/referrals", json=body(), headers=auth(tokens, credential)).status_code == 403


@pytest.mark.parametrize("field,value", [
    ("bsn", "123456789"), ("bsn", "12345678"), ("municipality", "amsterdam"), ("programme", "golf"),
    ("benefit", "ww"), ("referred_on", "2999-01-01"), ("referred_on", "2026-02-30"),
    ("date_of_birth", "1850-01-01"), ("date_of_birth", "3000-01-01"), ("name", ""),
    ("name", "a\x00b"), ("uwv_registered_on", "2999-01-01"), ("distance_to_labour_market", "far"),
    ("caseworker_id", "x y"),
])
def test_bad_fields_answer_problem_json_naming_the_field_not_the_value(client, tokens, field, value):
    response = client.post("/referrals", json=body(**{field: value}), headers=auth(tokens))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    if len(value) > 3:
        assert value not in response.text


def test_the_person_is_only_for_credentials_that_may_see_it(client, tokens, app):
    created = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    path = f"/referrals/{created['referral_id']}/person"
    person = client.get(path, headers=auth(tokens)).json()
    assert (person["bsn"], person["name"], person["date_of_birth"]) == (BSN, NAME, "1980-04-12")
    assert client.get(path, headers=auth(tokens, "alkmaar-staff")).status_code == 403
    assert client.get(path, headers=auth(tokens, "bergen-case-system")).status_code == 404


def test_once_a_persons_key_is_gone_their_data_is_unreadable_and_the_rest_stays(client, tokens, app):
    created = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    assert app.vault.keys.shred(uuid.UUID(created["client_id"]))
    gone = client.get(f"/referrals/{created['referral_id']}/person", headers=auth(tokens))
    assert gone.status_code == 410
    assert client.get(f"/referrals/{created['referral_id']}", headers=auth(tokens)).json()["status"] == "referred"


def test_malformed_requests_are_problems_never_500(client, tokens):
    headers = auth(tokens)
    assert client.get("/referrals/not-a-uuid", headers=headers).status_code == 422
    assert client.post("/referrals", content=b"{", headers=headers | {"content-type": "application/json"}).status_code == 422
    assert client.post("/referrals", json=[1, 2], headers=headers).status_code == 422
    assert client.post("/referrals", json=body(extra="x"), headers=headers).status_code == 422
    long_key = headers | {"Idempotency-Key": "k" * 200}
    assert client.post("/referrals", json=body(), headers=long_key).status_code == 422


def test_the_openapi_document_names_the_errors_and_the_bearer_auth(client):
    document = client.get("/openapi.json").json()
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    post = document["paths"]["/referrals"]["post"]
    assert {"401", "403", "409", "422"} <= set(post["responses"])
    assert post["security"] == [{"HTTPBearer": []}]
