"""LBU: a job instead of a benefit, and the unknown-destination cohort (injected clock)."""

import datetime as dt

from contracts.events import DestinationUnknown, JobOfferRefused, ReturnedForBenefit
from contracts.municipalities import MUNICIPALITIES
from services.intake.tests.conftest import auth


def offer(client, tokens, **overrides):
    body = {"bsn": "123456782", "name": "Sem Proef", "date_of_birth": "1995-06-01",
            "municipality": "alkmaar", "offered_on": "2026-01-05", "caseworker_id": "cw-9"}
    response = client.post("/job-offers", json=body | overrides, headers=auth(tokens))
    assert response.status_code == 201, response.text
    return response.json()


def act(client, tokens, offer_id, action, **body):
    return client.post(f"/job-offers/{offer_id}/{action}", json=body, headers=auth(tokens))


def published(app):
    return [e for n in app.recorder.select_notifications(None, 1000)
            for _, e in app.integration_events(app.mapper.to_domain_event(n))]


def test_accepting_the_job_starts_a_focus2move_trajectory_at_wnk(client, tokens, app):
    made = offer(client, tokens)
    accepted = act(client, tokens, made["offer_id"], "acceptance",
                   accepted_on="2026-01-08", contract_starts_on="2026-01-12").json()
    assert accepted["state"] == "accepted"
    referral = client.get(f"/referrals/{accepted['referral_id']}", headers=auth(tokens)).json()
    assert (referral["programme"], referral["route"], referral["status"]) == ("focus2move", "lbu", "referred")
    [referred] = [e for e in published(app) if type(e).__name__ == "ClientReferred"]
    assert referred.route == "lbu" and referred.wnk_contract_starts_on == dt.date(2026, 1, 12)


def test_a_refusal_with_no_return_joins_the_unknown_cohort_once_after_the_period(client, tokens, app, clock):
    made = offer(client, tokens)
    refused = act(client, tokens, made["offer_id"], "refusal", refused_on="2026-01-09").json()
    assert refused["respond_by"] == "2026-04-10"  # 13 weeks

    clock.today = dt.date(2026, 4, 10)  # the last day: still waiting
    assert app.mark_unknown_destinations(MUNICIPALITIES) == 0
    clock.today = dt.date(2026, 4, 11)
    assert app.mark_unknown_destinations(MUNICIPALITIES) == 1
    assert app.mark_unknown_destinations(MUNICIPALITIES) == 0  # a second run emits nothing
    assert client.get(f"/job-offers/{made['offer_id']}", headers=auth(tokens)).json()["state"] == \
        "destination-unknown"
    assert [type(e) for e in published(app)].count(DestinationUnknown) == 1


def test_coming_back_later_takes_them_out_of_the_unknown_cohort(client, tokens, app, clock):
    made = offer(client, tokens)
    act(client, tokens, made["offer_id"], "refusal", refused_on="2026-01-09")
    clock.today = dt.date(2026, 6, 1)
    app.mark_unknown_destinations(MUNICIPALITIES)
    back = act(client, tokens, made["offer_id"], "return", returned_on="2026-06-01").json()
    assert back["state"] == "returned-for-benefit"
    [returned] = [e for e in published(app) if isinstance(e, ReturnedForBenefit)]
    assert returned.from_unknown_destination is True


def test_coming_back_within_the_period_keeps_them_out_of_the_cohort(client, tokens, app, clock):
    made = offer(client, tokens)
    act(client, tokens, made["offer_id"], "refusal", refused_on="2026-01-09")
    act(client, tokens, made["offer_id"], "return", returned_on="2026-02-01")
    clock.today = dt.date(2026, 12, 1)
    assert app.mark_unknown_destinations(MUNICIPALITIES) == 0
    kinds = [type(e) for e in published(app)]
    assert JobOfferRefused in kinds and DestinationUnknown not in kinds


def test_starting_the_contract_after_a_refusal_also_keeps_them_out(client, tokens, app, clock):
    made = offer(client, tokens)
    act(client, tokens, made["offer_id"], "refusal", refused_on="2026-01-09")
    act(client, tokens, made["offer_id"], "acceptance", accepted_on="2026-01-20",
        contract_starts_on="2026-01-26")
    clock.today = dt.date(2026, 12, 1)
    assert app.mark_unknown_destinations(MUNICIPALITIES) == 0


def test_commands_that_do_not_fit_the_state_are_409_naming_it(client, tokens):
    made = offer(client, tokens)
    early = act(client, tokens, made["offer_id"], "return", returned_on="2026-01-09")
    assert early.status_code == 409
    assert early.json()["state"] == "offered"
    assert early.json()["allowed"] == ["acceptance", "refusal"]
    act(client, tokens, made["offer_id"], "acceptance", accepted_on="2026-01-08",
        contract_starts_on="2026-01-12")
    twice = act(client, tokens, made["offer_id"], "refusal", refused_on="2026-01-09")
    assert twice.status_code == 409 and twice.json()["allowed"] == []


def test_another_municipality_cannot_see_or_act_on_an_offer(client, tokens):
    made = offer(client, tokens)
    other = auth(tokens, "heiloo-case-system")
    assert client.get(f"/job-offers/{made['offer_id']}", headers=other).status_code == 404
    response = client.post(f"/job-offers/{made['offer_id']}/refusal", headers=other,
                           json={"refused_on": "2026-01-09"})
    assert response.status_code == 404
