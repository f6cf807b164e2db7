"""Erasure by crypto-shredding: on request or after the retention period, on record."""

import datetime as dt
import uuid

from contracts.events import PersonErased
from services.intake.tests.conftest import auth
from services.intake.tests.test_referral_api import body


def published(app):
    return [e for n in app.recorder.select_notifications(None, 1000)
            for _, e in app.integration_events(app.mapper.to_domain_event(n))]


def test_erasing_a_person_makes_them_unreadable_and_is_itself_on_record(client, tokens, app):
    first = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    second = client.post("/referrals", json=body(programme="social-activation"), headers=auth(tokens)).json()
    erased = client.post(f"/referrals/{first['referral_id']}/person/erasure", headers=auth(tokens),
                         json={"reason": "request"})
    assert erased.status_code == 200 and erased.json()["referrals_and_offers"] == 2
    for referral in (first, second):
        assert client.get(f"/referrals/{referral['referral_id']}/person", headers=auth(tokens)).status_code == 410
        assert client.get(f"/referrals/{referral['referral_id']}", headers=auth(tokens)).json()["status"] == "referred"
    notices = [e for e in published(app) if isinstance(e, PersonErased)]
    assert {str(e.trajectory_id) for e in notices} == {first["trajectory_id"], second["trajectory_id"]}
    again = client.post(f"/referrals/{first['referral_id']}/person/erasure", headers=auth(tokens),
                        json={"reason": "request"})
    assert again.status_code == 200
    assert len([e for e in published(app) if isinstance(e, PersonErased)]) == 2  # not twice


def test_only_the_own_municipality_may_erase_and_only_with_the_scope(client, tokens):
    created = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    path = f"/referrals/{created['referral_id']}/person/erasure"
    assert client.post(path, headers=auth(tokens, "bergen-case-system"), json={"reason": "request"}).status_code == 404
    assert client.post(path, headers=auth(tokens, "alkmaar-staff"), json={"reason": "request"}).status_code == 403
    assert client.post(path, headers=auth(tokens), json={"reason": "whim"}).status_code == 422


def test_people_are_erased_on_their_own_after_the_retention_period(client, tokens, app, clock):
    closed = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    client.post(f"/referrals/{closed['referral_id']}/withdrawal", headers=auth(tokens),
                json={"withdrawn_on": "2026-11-10", "reason": "moved-away"})
    still_open = client.post("/referrals", headers=auth(tokens), json=body(
        bsn="123456782", programme="social-activation")).json()

    clock.today = dt.date(2033, 11, 10)  # seven years after the withdrawal
    assert app.erase_expired() == 0
    clock.today = dt.date(2033, 11, 11)
    assert app.erase_expired() == 1
    assert client.get(f"/referrals/{closed['referral_id']}/person", headers=auth(tokens)).status_code == 410
    assert client.get(f"/referrals/{still_open['referral_id']}/person", headers=auth(tokens)).status_code == 200
    assert app.erase_expired() == 0
    [notice] = [e for e in published(app) if isinstance(e, PersonErased)]
    assert notice.reason == "retention-ended" and str(notice.trajectory_id) == closed["trajectory_id"]


def test_the_esf_retention_date_holds_erasure_back(tokens, credentials, clock):
    from fastapi.testclient import TestClient

    from intake.api import create_api
    from intake.application import IntakeApplication, IntakeConfig

    app = IntakeApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, config=IntakeConfig(
        pseudonym_key=b"t", retention_years=(("focus2move", 1),), esf_retention_until=dt.date(2030, 12, 31)))
    client = TestClient(create_api(app, credentials[0]))
    created = client.post("/referrals", json=body(), headers=auth(tokens)).json()
    client.post(f"/referrals/{created['referral_id']}/withdrawal", headers=auth(tokens),
                json={"withdrawn_on": "2026-11-10", "reason": "error"})
    clock.today = dt.date(2030, 12, 31)
    assert app.erase_expired() == 0
    clock.today = dt.date(2031, 1, 1)
    assert app.erase_expired() == 1
    assert uuid.UUID(created["client_id"])
