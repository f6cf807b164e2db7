"""Tamper evidence in the real stores: a row edited behind the application's back, or a
row removed, is named by the replay."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid

import psycopg
import pytest

from contracts.access import Principal
from contracts.chain import unwrap
from contracts.service import store_env
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person


def referral(app: IntakeApplication) -> dict:
    return app.refer(ReferralInput(
        person=Person("111222333", "Kees Ketting", dt.date(1979, 5, 5)), municipality="alkmaar",
        programme="focus2move", benefit="bijstand", uwv_registered_on=None,
        distance_to_labour_market="large", referred_on=dt.date(2026, 11, 2), caseworker_id="cw"))[1]


CASE_SYSTEM = Principal(id="alkmaar-case-system", kind="municipality", scopes=frozenset(),
                        municipality="alkmaar")


def withdraw(app: IntakeApplication, referral_id: uuid.UUID) -> None:
    app.withdraw(referral_id, CASE_SYSTEM, withdrawn_on=dt.date(2026, 11, 3), reason="error")


def stored_id(url: str, referral_id: uuid.UUID):
    return referral_id.hex if url.startswith("sqlite") else referral_id


def execute(url: str, statement: str, params: tuple) -> None:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement.replace("%s", "?"), params)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement, params)


def table(url: str) -> str:
    return "stored_events" if url.startswith("sqlite") else "intake_events"


@pytest.fixture
def intake(database_url):
    url = database_url("chain")
    app = IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"))
    yield app, url
    app.close()


def test_an_untouched_stream_verifies(intake):
    app, _ = intake
    created = referral(app)
    report = app.verify_chain(uuid.UUID(created["referral_id"]))
    assert report.intact and report.events == 2  # received, accepted


def test_an_edited_row_is_named_by_its_version(intake):
    app, url = intake
    referral_id = uuid.UUID(referral(app)["referral_id"])
    withdraw(app, referral_id)
    stored = app.recorder.select_events(referral_id)[1]  # Accepted: {"decided_on": ...}
    _, _, state = unwrap(stored)
    assert b"2026-11-23" in state or b"decided_on" in state
    forged = bytes(stored.state).replace(b"decided_on", b"decided_at")
    execute(url, f"UPDATE {table(url)} SET state = %s WHERE originator_id = %s AND originator_version = %s",
            (forged, stored_id(url, referral_id), 2))
    report = app.verify_chain(referral_id)
    assert not report.intact
    assert report.broken_at == 2 and "differs" in report.reason
    assert app.verify_chain(uuid.UUID(referral(app)["referral_id"])).intact  # others unaffected


def test_a_removed_event_breaks_the_chain_at_the_next_one(intake):
    app, url = intake
    referral_id = uuid.UUID(referral(app)["referral_id"])
    withdraw(app, referral_id)
    execute(url, f"DELETE FROM {table(url)} WHERE originator_id = %s AND originator_version = %s",
            (stored_id(url, referral_id), 2))
    report = app.verify_chain(referral_id)
    assert report.broken_at == 3 and "missing" in report.reason
