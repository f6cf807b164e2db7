"""An LBU job offer's history: each fact with its valid date (`on`) and its recorded time
(`recorded_at`) apart, in the order of the valid dates, facts of one date in the order
recorded (issue 15, item 4) — as a referral's. On SQLite and PostgreSQL, and over HTTP.

Before the fix a case system read `[{"state": "offered", "on": "2026-01-05"}, {"state":
"refused", …}, {"state": "destination-unknown", "on": "2026-04-10"}, {"state":
"returned-for-benefit", "on": "2026-03-02"}]`: no recorded time, and a return entered late
for an earlier day stood after the timer's fact instead of before it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts.access import Credentials, Principal
from contracts.service import store_env
from infra.demo import write_credentials
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig
from intake.lbu import JobOffer
from intake.privacy import Person

ALKMAAR = Principal(id="alkmaar-case-system", kind="municipality",
                    scopes=frozenset({"referrals:read", "referrals:write"}), municipality="alkmaar")
PERSON = Person("999990020", "Demo Deelnemer Aanbod", dt.date(1990, 3, 9))  # a made-up person
OFFERED, REFUSED = dt.date(2026, 1, 5), dt.date(2026, 1, 9)
RESPOND_BY = dt.date(2026, 4, 10)  # 13 weeks after the refusal
RETURNED = dt.date(2026, 3, 2)  # before the deadline, but entered after the timer ran


class Today:
    """The installation clock, injected: the business's today."""

    def __init__(self, day: dt.date) -> None:
        self.day = day

    def __call__(self) -> dt.date:
        return self.day


def app_on(url: str, clock: Today) -> IntakeApplication:
    return IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"), clock=clock)


@pytest.fixture
def clock():
    return Today(REFUSED)


@pytest.fixture
def intake(database_url, clock):
    app = app_on(database_url("intake"), clock)
    yield app
    app.close()


def offer(app: IntakeApplication, offered_on: dt.date = OFFERED) -> uuid.UUID:
    status, body = app.offer_job(PERSON, municipality="alkmaar", offered_on=offered_on,
                                 caseworker_id="demo-caseworker-1")
    assert status == 201, body
    assert [(h["state"], h["on"]) for h in body["history"]] == [("offered", offered_on.isoformat())]
    assert body["history"][0]["recorded_at"] is not None  # also before it is stored
    return uuid.UUID(body["offer_id"])


def refused_then_unknown_then_returned_earlier(app: IntakeApplication, clock: Today) -> dict:
    offer_id = offer(app)
    app.refuse_offer(offer_id, ALKMAAR, refused_on=REFUSED)
    clock.day = RESPOND_BY + dt.timedelta(days=1)  # the timer runs the day after the deadline
    assert app.mark_unknown_destinations(["alkmaar"]) == 1
    return app.record_return(offer_id, ALKMAAR, returned_on=RETURNED)


EXPECTED = [("offered", "2026-01-05"), ("refused", "2026-01-09"),
            ("returned-for-benefit", "2026-03-02"), ("destination-unknown", "2026-04-10")]


def test_a_return_entered_later_for_an_earlier_day_stands_before_the_timers_fact(intake, clock):
    returned = refused_then_unknown_then_returned_earlier(intake, clock)
    history = returned["history"]
    assert [(h["state"], h["on"]) for h in history] == EXPECTED
    recorded = {h["state"]: dt.datetime.fromisoformat(h["recorded_at"]) for h in history}
    assert all(r.tzinfo is not None and r.date() >= dt.date(2026, 1, 1) for r in recorded.values())
    # the return was recorded after the timer's fact, and is shown before it by its valid date
    assert recorded["offered"] < recorded["refused"] < recorded["destination-unknown"] \
        < recorded["returned-for-benefit"]
    # the recorded time is the stored event's own timestamp, not the installation's clock
    stored = {type(e).__name__: e.timestamp for e in intake.events.get(uuid.UUID(returned["offer_id"]))}
    assert recorded == {"offered": stored["Made"], "refused": stored["Refused"],
                        "destination-unknown": stored["DestinationUnknown"],
                        "returned-for-benefit": stored["Returned"]}
    # what the read route shows is the same as what the command answered
    assert intake.job_offer(uuid.UUID(returned["offer_id"]), ALKMAAR)["history"] == history


def test_facts_of_one_date_keep_the_order_they_were_recorded_in(intake, clock):
    offer_id = offer(intake, offered_on=REFUSED)
    refused = intake.refuse_offer(offer_id, ALKMAAR, refused_on=REFUSED)
    accepted = intake.accept_offer(offer_id, ALKMAAR, accepted_on=REFUSED, contract_starts_on=REFUSED)
    assert refused["history"] == accepted["history"][:2]
    assert [(h["state"], h["on"]) for h in accepted["history"]] == [
        ("offered", "2026-01-09"), ("refused", "2026-01-09"), ("accepted", "2026-01-09")]
    recorded = [dt.datetime.fromisoformat(h["recorded_at"]) for h in accepted["history"]]
    assert recorded == sorted(recorded)


def test_the_stored_events_keep_their_shape(intake, clock):
    """The history is derived, never stored: the events are those of the previous release."""
    returned = refused_then_unknown_then_returned_earlier(intake, clock)
    fields = {type(e).__name__: set(vars(e)) - {"originator_id", "originator_version", "timestamp"}
              for e in intake.events.get(uuid.UUID(returned["offer_id"]))}
    assert fields == {
        "Made": {"originator_topic", "trajectory_id", "client_id", "sealed_person", "municipality",
                 "offered_on", "caseworker_id"},
        "Refused": {"refused_on", "respond_by"},
        "DestinationUnknown": {"since"},
        "Returned": {"returned_on", "from_unknown_destination"},
    }
    assert isinstance(intake.repository.get(uuid.UUID(returned["offer_id"])), JobOffer)


def test_the_history_over_http_after_a_restart(database_url, tmp_path):
    """What the case system reads, from a new process on the same store."""
    url, clock = database_url("intake"), Today(REFUSED)
    path, tokens = write_credentials(tmp_path / "config")
    first = app_on(url, clock)
    returned = refused_then_unknown_then_returned_earlier(first, clock)
    first.close()
    again = app_on(url, clock)
    try:
        client = TestClient(create_api(again, Credentials.from_file(path)))
        response = client.get(f"/job-offers/{returned['offer_id']}",
                              headers={"Authorization": f"Bearer {tokens['alkmaar-case-system']}"})
        assert response.status_code == 200, response.text
        history = response.json()["history"]
        assert [(h["state"], h["on"]) for h in history] == EXPECTED
        assert history == returned["history"]
    finally:
        again.close()
