"""Intake's commands against concurrent writers of the same aggregates (issue 14, item 5),
on SQLite and PostgreSQL: every command path retries a version conflict by the one rule
of `contracts.commands` — no 500, no lost write, no double effect; a command that keeps
losing is a 503 problem with Retry-After.

The first test is the reported failure, over HTTP against intake served by uvicorn with
its inbox on the real broker: a withdrawal decided while the consumer applies
TrajectoryOpened to the same referral, and written after it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from contracts import kafka
from contracts.access import Credentials, Principal
from contracts.commands import Busy
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import TrajectoryOpened
from contracts.inbox import Inbox
from contracts.problems import Problem
from contracts.service import store_env
from infra.demo import write_credentials
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.domain import ClientFile
from intake.privacy import Person
from tests.support.kafka_tools import fresh_topics
from tests.support.racing import at_once, always_conflicting, kinds, race, served

ALKMAAR = Principal(id="alkmaar-case-system", kind="municipality",
                    scopes=frozenset({"referrals:read", "referrals:write"}), municipality="alkmaar")
# Made-up people: every BSN passes the 11-test.
PEOPLE = [Person("111222333", "Anouk Voorbeeld", dt.date(1981, 3, 4)),
          Person("123456782", "Bram Proefmens", dt.date(1975, 11, 30)),
          Person("999999990", "Cor Testgeval", dt.date(1990, 7, 19))]
DAY = dt.date(2026, 11, 2)


def new_intake(url: str) -> IntakeApplication:
    return IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"),
                             clock=lambda: dt.date(2026, 11, 23))


def referral(person: Person = PEOPLE[0]) -> ReferralInput:
    return ReferralInput(person=person, municipality="alkmaar", programme="focus2move",
                         benefit="bijstand", uwv_registered_on=None, distance_to_labour_market="large",
                         referred_on=DAY, caseworker_id="cw-1")


def stored_kinds(app: IntakeApplication, aggregate_id: Any) -> list[str]:
    return [type(e).__qualname__ for e in app.events.get(uuid.UUID(str(aggregate_id)))]



@pytest.fixture
def intake(database_url):
    app = new_intake(database_url("intake"))
    yield app
    app.close()


# --- the reported failure, over HTTP and the real broker ----------------------------------


@pytest.mark.kafka
async def test_a_withdrawal_written_after_the_consumer_moved_the_referral_on_is_not_a_500(
        database_url, bootstrap, tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    topics = await fresh_topics(bootstrap, "trajectory", groups=("intake",))
    app = new_intake(database_url("intake"))
    producer = kafka.producer(bootstrap, "intake-conflict-test")
    await producer.start()
    headers = {"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}
    inbox_task = None
    try:
        with served(create_api(app, Credentials.from_file(path))) as url:
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=90) as http:
                body = {"bsn": "111222333", "name": "Anouk Voorbeeld", "date_of_birth": "1981-03-04",
                        "municipality": "alkmaar", "programme": "focus2move", "benefit": "bijstand",
                        "distance_to_labour_market": "large", "referred_on": DAY.isoformat(),
                        "caseworker_id": "cw-1"}
                referred = (await http.post("/referrals", json=body)).json()
                # The withdrawal and the consumer decide on the same version of the referral;
                # the consumer writes first.
                race(app, 2, loses=lambda pe: "Referral.Withdrawn" in kinds(pe))
                opened = TrajectoryOpened(
                    trajectory_id=uuid.UUID(referred["trajectory_id"]),
                    referral_id=uuid.UUID(referred["referral_id"]),
                    client_id=uuid.UUID(referred["client_id"]), municipality="alkmaar",
                    programme="focus2move", opened_on=DAY)
                key, value, record_headers = to_record(envelope(
                    opened, source=source_urn("alkmaar", "tweespoor-trajectory"), origin="t/1",
                    sequence=1, time=dt.datetime.now(dt.UTC)))
                await producer.send_and_wait(topics["trajectory"], value, key=key, headers=record_headers)
                inbox = Inbox(bootstrap_servers=bootstrap, topics=[topics["trajectory"]],
                              target=app, producer=producer)
                inbox_task = asyncio.create_task(inbox.run())
                answer = await http.post(f"/referrals/{referred['referral_id']}/withdrawal",
                                         json={"withdrawn_on": "2026-11-20", "reason": "moved-away"})
                assert answer.status_code == 200, answer.text
                now = (await http.get(f"/referrals/{referred['referral_id']}")).json()
    finally:
        if inbox_task is not None:
            inbox_task.cancel()
            await asyncio.gather(inbox_task, return_exceptions=True)
        await producer.stop()
    try:
        # Both writes stayed, each once: the consumer's, then the withdrawal decided again.
        assert [h["status"] for h in now["history"]] == ["referred", "started", "withdrawn"]
        assert now["status"] == "withdrawn"
        assert stored_kinds(app, referred["referral_id"]).count("Referral.Withdrawn") == 1
        assert stored_kinds(app, referred["referral_id"]).count("Referral.TrajectoryStarted") == 1
    finally:
        app.close()


# --- every command path, two writers at once ----------------------------------------------


def test_two_withdrawals_at_once_withdraw_once_and_refuse_the_other(intake):
    _, first = intake.refer(referral())
    race(intake, 2)
    results = at_once(*[lambda: intake.withdraw(uuid.UUID(first["referral_id"]), ALKMAAR,
                                                withdrawn_on=DAY, reason="moved-away")] * 2)
    done = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Problem)]
    assert len(done) == 1 and done[0]["status"] == "withdrawn"
    assert len(refused) == 1 and refused[0].status == 409  # a domain refusal stays a 409
    assert stored_kinds(intake, first["referral_id"]).count("Referral.Withdrawn") == 1


def test_two_referrals_of_one_person_at_once_hold_the_programme_once(intake):
    race(intake, 2)
    results = at_once(lambda: intake.refer(referral()), lambda: intake.refer(referral()))
    assert sorted(r[0] if isinstance(r, tuple) else r.status for r in results) == [201, 409]


def test_a_withdrawal_racing_the_consumer_on_the_same_referral_keeps_both(intake):
    _, first = intake.refer(referral())
    opened = envelope(TrajectoryOpened(
        trajectory_id=uuid.UUID(first["trajectory_id"]), referral_id=uuid.UUID(first["referral_id"]),
        client_id=uuid.UUID(first["client_id"]), municipality="alkmaar", programme="focus2move",
        opened_on=DAY), source=source_urn("alkmaar", "tweespoor-trajectory"), origin="t/1",
        sequence=1, time=dt.datetime.now(dt.UTC))
    race(intake, 2, loses=lambda pe: "Referral.Withdrawn" in kinds(pe))
    withdrawn, applied = at_once(
        lambda: intake.withdraw(uuid.UUID(first["referral_id"]), ALKMAAR, withdrawn_on=DAY, reason="moved-away"),
        lambda: intake.apply(opened, "tweespoor.trajectory.events.v1", 0, 0))
    assert isinstance(withdrawn, dict) and withdrawn["status"] == "withdrawn", withdrawn
    assert [h[0] for h in intake.repository.get(uuid.UUID(first["referral_id"])).history] == \
        ["referred", "started", "withdrawn"]


def offer(app: IntakeApplication, person: Person) -> str:
    _, body = app.offer_job(person, municipality="alkmaar", offered_on=DAY, caseworker_id="cw-2")
    return body["offer_id"]


def test_two_refusals_in_one_municipality_both_join_the_watchlist(intake):
    # Different offers, one watchlist per municipality: the writers meet on the watchlist.
    offers = [offer(intake, PEOPLE[0]), offer(intake, PEOPLE[1])]
    race(intake, 2)
    results = at_once(*[lambda o=o: intake.refuse_offer(uuid.UUID(o), ALKMAAR, refused_on=DAY)
                        for o in offers])
    assert all(isinstance(r, dict) and r["state"] == "refused" for r in results), results
    assert set(intake._watchlist("alkmaar").pending) == set(offers)


def test_an_acceptance_and_a_return_of_one_offer_at_once_take_effect_once(intake):
    offer_id = uuid.UUID(offer(intake, PEOPLE[2]))
    intake.refuse_offer(offer_id, ALKMAAR, refused_on=DAY)
    race(intake, 2)
    results = at_once(
        lambda: intake.accept_offer(offer_id, ALKMAAR, accepted_on=DAY, contract_starts_on=DAY),
        lambda: intake.record_return(offer_id, ALKMAAR, returned_on=DAY))
    assert sorted("done" if isinstance(r, dict) else str(r.status) for r in results) == ["409", "done"], results
    ended = stored_kinds(intake, offer_id)
    assert ended.count("JobOffer.Accepted") + ended.count("JobOffer.Returned") == 1


def test_an_erasure_racing_a_new_referral_of_the_person_keeps_both(intake):
    _, first = intake.refer(referral())
    intake.withdraw(uuid.UUID(first["referral_id"]), ALKMAAR, withdrawn_on=DAY, reason="moved-away")
    race(intake, 2, loses=lambda pe: "ClientFile.Erased" in kinds(pe))  # both change the person's file
    erased, referred = at_once(
        lambda: intake.erase_person_of(uuid.UUID(first["referral_id"]), ALKMAAR, reason="request"),
        lambda: intake.refer(referral()))
    assert isinstance(erased, dict) and isinstance(referred, tuple), (erased, referred)
    assert erased["referrals_and_offers"] == 2  # decided again on the file with both in it
    file_events = stored_kinds(intake, ClientFile.create_id(uuid.UUID(first["client_id"])))
    assert file_events.count("ClientFile.Erased") == 1 and file_events.count("ClientFile.Added") == 2


# --- a command that keeps losing: 503 with Retry-After, never a 500 -----------------------


COMMANDS = {
    "refer": lambda app, ids: app.refer(referral(PEOPLE[1])),
    "withdraw": lambda app, ids: app.withdraw(ids["referral"], ALKMAAR, withdrawn_on=DAY, reason="error"),
    "offer_job": lambda app, ids: app.offer_job(PEOPLE[2], municipality="alkmaar", offered_on=DAY,
                                                caseworker_id="cw-2"),
    "accept_offer": lambda app, ids: app.accept_offer(ids["offer"], ALKMAAR, accepted_on=DAY,
                                                      contract_starts_on=DAY),
    "refuse_offer": lambda app, ids: app.refuse_offer(ids["offer"], ALKMAAR, refused_on=DAY),
    "record_return": lambda app, ids: app.record_return(ids["refused"], ALKMAAR, returned_on=DAY),
    "erase_person_of": lambda app, ids: app.erase_person_of(ids["referral"], ALKMAAR, reason="request"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_that_keeps_losing_is_busy_not_an_error(intake, command):
    _, first = intake.refer(referral())
    refused = uuid.UUID(offer(intake, PEOPLE[1]))
    intake.refuse_offer(refused, ALKMAAR, refused_on=DAY)
    ids = {"referral": uuid.UUID(first["referral_id"]), "offer": uuid.UUID(offer(intake, PEOPLE[2])),
           "refused": refused}
    calls = always_conflicting(intake)
    with pytest.raises(Busy) as busy:
        COMMANDS[command](intake, ids)
    assert busy.value.status == 503 and busy.value.headers == {"Retry-After": "1"}
    assert calls["recorded"] > 1  # decided again before giving up
