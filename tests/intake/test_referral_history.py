"""A referral's history: each fact with its valid date (`on`) and its recorded time
(`recorded_at`) apart, in the order of the valid dates (issue 15, item 4). On SQLite and
PostgreSQL, and over HTTP.

Before the fix a new user read `[{"status": "referred", "on": "2026-12-04"}, {"status":
"started", "on": "2008-02-04"}]`: the decision was dated on the day it was recorded, and
the entries stood in the order they were recorded."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts.access import Credentials, Principal
from contracts.envelope import envelope, source_urn
from contracts.events import TrajectoryClosed, TrajectoryOpened
from contracts.service import store_env
from infra.demo import write_credentials
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person

ALKMAAR = Principal(id="alkmaar-case-system", kind="municipality",
                    scopes=frozenset({"referrals:read", "referrals:write"}), municipality="alkmaar")
PERSON = Person("999990019", "Demo Deelnemer Geschiedenis", dt.date(1980, 1, 15))  # a made-up person
REFERRED = dt.date(2008, 2, 1)
RECORDED_ON = dt.date(2026, 12, 4)  # the wall clock's day when the decision was recorded


class Today:
    def __init__(self, day: dt.date) -> None:
        self.day = day

    def __call__(self) -> dt.date:
        return self.day


@pytest.fixture
def intake(database_url):
    app = IntakeApplication(store_env(database_url("intake")), config=IntakeConfig(pseudonym_key=b"k"),
                            clock=Today(RECORDED_ON))
    yield app
    app.close()


def feed(app: IntakeApplication, referral: dict, *facts) -> None:
    source = source_urn("alkmaar", "tweespoor-trajectory")
    for n, data in enumerate(facts):
        app.apply(envelope(data, source=source, origin=f"t/{referral['referral_id']}/{n}", sequence=n + 1,
                           time=dt.datetime.now(dt.UTC)), "tweespoor.trajectory.events.v1", 0, n)


def refer(app: IntakeApplication) -> dict:
    status, body = app.refer(ReferralInput(
        person=PERSON, municipality="alkmaar", programme="focus2move", benefit="bijstand",
        uwv_registered_on=None, distance_to_labour_market="large", referred_on=REFERRED,
        caseworker_id="demo-caseworker-1"))
    assert status == 201, body
    return body


def test_the_decision_is_valid_on_the_referral_date_and_the_history_is_in_valid_date_order(intake):
    referral = refer(intake)
    trajectory_id = uuid.UUID(referral["trajectory_id"])
    assert [(h["status"], h["on"]) for h in referral["history"]] == [("referred", "2008-02-01")]

    feed(intake, referral,
         TrajectoryOpened(trajectory_id=trajectory_id, referral_id=uuid.UUID(referral["referral_id"]),
                          client_id=uuid.UUID(referral["client_id"]), municipality="alkmaar",
                          programme="focus2move", opened_on=dt.date(2008, 2, 4)),
         TrajectoryClosed(trajectory_id=trajectory_id, reason="moved-away", closed_on=dt.date(2008, 3, 3)))

    history = intake.referral(uuid.UUID(referral["referral_id"]), ALKMAAR)["history"]
    assert [(h["status"], h["on"]) for h in history] == [
        ("referred", "2008-02-01"), ("started", "2008-02-04"), ("closed", "2008-03-03")]
    recorded = [dt.datetime.fromisoformat(h["recorded_at"]) for h in history]
    assert all(r.tzinfo is not None and r.date() >= dt.date(2026, 1, 1) for r in recorded)  # real time
    assert recorded == sorted(recorded)


def test_a_fact_recorded_later_with_an_earlier_valid_date_stands_before_it(intake):
    """A withdrawal entered today for a day before the trajectory was reported started:
    its place is by its valid date; ties keep the order they were recorded in."""
    referral = refer(intake)
    trajectory_id = uuid.UUID(referral["trajectory_id"])
    feed(intake, referral,
         TrajectoryOpened(trajectory_id=trajectory_id, referral_id=uuid.UUID(referral["referral_id"]),
                          client_id=uuid.UUID(referral["client_id"]), municipality="alkmaar",
                          programme="focus2move", opened_on=dt.date(2008, 2, 4)))
    withdrawn = intake.withdraw(uuid.UUID(referral["referral_id"]), ALKMAAR,
                                withdrawn_on=dt.date(2008, 2, 1), reason="moved-away")
    assert [(h["status"], h["on"]) for h in withdrawn["history"]] == [
        ("referred", "2008-02-01"), ("withdrawn", "2008-02-01"), ("started", "2008-02-04")]
    first, second = (dt.datetime.fromisoformat(h["recorded_at"]) for h in withdrawn["history"][:2])
    assert first < second  # the tie on 1 February: in the order recorded


def test_the_history_over_http_after_a_restart(database_url, tmp_path):
    """What the case system reads, from a new process on the same store."""
    url = database_url("intake")
    path, tokens = write_credentials(tmp_path / "config")
    first = IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"), clock=Today(RECORDED_ON))
    referral = refer(first)
    first.close()
    again = IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"), clock=Today(RECORDED_ON))
    try:
        client = TestClient(create_api(again, Credentials.from_file(path)))
        body = client.get(f"/referrals/{referral['referral_id']}",
                          headers={"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}).json()
        [decided] = body["history"]
        assert (decided["status"], decided["on"]) == ("referred", "2008-02-01")
        assert dt.datetime.fromisoformat(decided["recorded_at"]).date() != REFERRED
    finally:
        again.close()
