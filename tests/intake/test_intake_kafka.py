"""Intake over HTTP, its store (SQLite and PostgreSQL) and the real Kafka broker: what it
publishes, what it follows, its timer, and that no personal data leaves it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import kafka
from contracts.envelope import envelope, from_record, source_urn, to_record
from contracts.events import (
    ClientReferred, DestinationUnknown, PlacedInJob, ReferralRejected, TrajectoryClosed,
    TrajectoryOpened,
)
from contracts.inbox import Inbox
from contracts.municipalities import MUNICIPALITIES
from contracts.outbox import OutboxRelay
from contracts.runtime import JsonFormatter
from contracts.service import store_env
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig
from tests.support.kafka_tools import eventually, fresh_topics, read_all
from tests.support.clocks import Clock

pytestmark = [pytest.mark.kafka]

# Made-up people: every BSN passes the 11-test. The last test looks for all of them.
PEOPLE = [("111222333", "Anouk Voorbeeld", "1981-03-04"), ("123456782", "Bram Proefmens", "1975-11-30"),
          ("999999990", "Cor Testgeval", "1990-07-19"), ("100000009", "Dewi Nepnaam", "1968-01-23")]
TOPICS_USED: list[str] = []
LOG_LINES: list[str] = []


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        LOG_LINES.append(JsonFormatter().format(record))


@pytest.fixture(scope="module", autouse=True)
def every_log_line():
    handler, root = _Capture(level=logging.DEBUG), logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture
async def intake(bootstrap, database_url, credentials):
    topics = await fresh_topics(bootstrap, "intake", "trajectory", groups=("intake",))
    TOPICS_USED.extend(topics.values())
    url = database_url("intake")
    clock = Clock(dt.date(2026, 11, 23))
    app = IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"), clock=clock)
    producer = kafka.producer(bootstrap, "intake-test")
    await producer.start()

    class Intake:
        pass

    it = Intake()
    it.app, it.url, it.clock, it.topics, it.producer = app, url, clock, topics, producer
    it.http = TestClient(create_api(app, credentials[0]))
    it.tokens = credentials[1]
    it.relay = OutboxRelay(app=app, translate=app.integration_events, producer=producer,
                           topic=topics["intake"], system="tweespoor-intake")
    yield it
    await producer.stop()
    app.close()


def post(it, path, body, municipality="alkmaar", **headers):
    return it.http.post(path, json=body, headers={
        "Authorization": f"Bearer {it.tokens[f'{municipality}-case-system']}", **headers})


def referral_body(person, **overrides):
    bsn, name, born = person
    return {"bsn": bsn, "name": name, "date_of_birth": born, "municipality": "alkmaar",
            "programme": "focus2move", "benefit": "bijstand", "distance_to_labour_market": "large",
            "referred_on": "2026-11-02", "caseworker_id": "cw-1"} | overrides


async def published(it):
    await it.relay.relay_once()
    return [from_record(r.key, r.value, list(r.headers))
            for r in await read_all(it.producer.client._bootstrap_servers, it.topics["intake"])]


async def test_each_eligibility_rule_decides_what_goes_on_kafka(intake):
    cases = [
        (referral_body(PEOPLE[0]), ClientReferred, None),
        (referral_body(PEOPLE[1], municipality="bergen"), ReferralRejected, "focus2move-not-offered"),
        (referral_body(PEOPLE[1], benefit="anw"), ReferralRejected, "focus2move-needs-bijstand"),
        (referral_body(PEOPLE[2], programme="social-activation", benefit="wao"), ClientReferred, None),
        (referral_body(PEOPLE[2], programme="social-activation", benefit="none"), ReferralRejected,
         "social-activation-needs-bijstand-or-wao"),
        (referral_body(PEOPLE[3], programme="social-activation", distance_to_labour_market="small"),
         ReferralRejected, "social-activation-needs-large-distance"),
        (referral_body(PEOPLE[3], programme="reintegration", benefit="none",
                       uwv_registered_on="2026-10-01"), ClientReferred, None),
        (referral_body(PEOPLE[1], programme="reintegration", benefit="anw"), ReferralRejected,
         "reintegration-needs-uwv-registration"),
        (referral_body(PEOPLE[1], programme="reintegration", benefit="bijstand",
                       uwv_registered_on="2026-10-01"), ReferralRejected, "reintegration-only-for-nugger-or-anw"),
    ]
    answers = []
    for body, _, _ in cases:
        municipality = body["municipality"]
        answer = post(intake, "/referrals", body, municipality=municipality)
        assert answer.status_code == 201, answer.text
        answers.append(answer.json())
    events = {str(e.data.referral_id): e.data for e in await published(intake)}
    for (_, kind, reason), answer in zip(cases, answers, strict=True):
        event = events[answer["referral_id"]]
        assert isinstance(event, kind)
        if reason:
            assert event.reason_code == reason and reason in event.reason_codes


async def test_idempotent_retries_publish_one_event(intake):
    body = referral_body(PEOPLE[0])
    for _ in range(3):
        assert post(intake, "/referrals", body, **{"Idempotency-Key": "k-1"}).status_code == 201
    assert [type(e.data) for e in await published(intake)] == [ClientReferred]


async def test_intake_follows_its_trajectories_from_kafka(intake, bootstrap):
    referral = post(intake, "/referrals", referral_body(PEOPLE[0])).json()
    trajectory_id = uuid.UUID(referral["trajectory_id"])
    source = source_urn("alkmaar", "tweespoor-trajectory")
    day = dt.date(2026, 11, 5)
    for n, data in enumerate([
        TrajectoryOpened(trajectory_id=trajectory_id, referral_id=uuid.UUID(referral["referral_id"]),
                         client_id=uuid.UUID(referral["client_id"]), municipality="alkmaar",
                         programme="focus2move", opened_on=day),
        TrajectoryClosed(trajectory_id=trajectory_id, reason="moved-away", closed_on=day),
    ]):
        key, value, headers = to_record(envelope(data, source=source, origin=f"t/{n}", sequence=n + 1,
                                                 time=dt.datetime.now(dt.UTC)))
        await intake.producer.send_and_wait(intake.topics["trajectory"], value, key=key, headers=headers)
    inbox = Inbox(bootstrap_servers=bootstrap, topics=[intake.topics["trajectory"]],
                  target=intake.app, producer=intake.producer)
    task = asyncio.create_task(inbox.run())
    path = f"/referrals/{referral['referral_id']}"
    headers = {"Authorization": f"Bearer {intake.tokens['alkmaar-case-system']}"}
    try:
        closed = await eventually(lambda: (r := intake.http.get(path, headers=headers).json())
                                  ["status"] == "closed" and r)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [h["status"] for h in closed["history"]] == ["referred", "started", "closed"]
    # closed: the person may be referred to the programme again
    assert post(intake, "/referrals", referral_body(PEOPLE[0])).status_code == 201


async def test_the_lbu_timer_in_two_processes_emits_destination_unknown_once(intake):
    bsn, name, born = PEOPLE[2]
    offer = post(intake, "/job-offers", {"bsn": bsn, "name": name, "date_of_birth": born,
                                         "municipality": "alkmaar", "offered_on": "2026-01-05",
                                         "caseworker_id": "cw-3"}).json()
    post(intake, f"/job-offers/{offer['offer_id']}/refusal", {"refused_on": "2026-01-06"})
    intake.clock.today = dt.date(2026, 6, 1)
    twin = IntakeApplication(store_env(intake.url), config=IntakeConfig(pseudonym_key=b"k"),
                             clock=intake.clock)
    try:
        marked = await asyncio.gather(
            asyncio.to_thread(intake.app.mark_unknown_destinations, MUNICIPALITIES),
            asyncio.to_thread(twin.mark_unknown_destinations, MUNICIPALITIES))
    finally:
        twin.close()
    assert sum(marked) == 1
    assert intake.app.mark_unknown_destinations(MUNICIPALITIES) == 0
    kinds = [type(e.data) for e in await published(intake)]
    assert kinds.count(DestinationUnknown) == 1


async def test_no_personal_data_on_kafka_or_in_a_log_line(intake, bootstrap):
    """Runs last in this module: scans every record and log line the tests above made."""
    assert TOPICS_USED and LOG_LINES
    forbidden = {s for person in PEOPLE for s in person} | {
        f"{b[8:10]}-{b[5:7]}-{b[0:4]}" for _, _, b in PEOPLE}  # also 04-03-1981
    logged = list(LOG_LINES)
    texts = list(logged)
    for topic in TOPICS_USED:
        for record in await read_all(bootstrap, topic):
            texts.append((record.value or b"").decode(errors="replace"))
            texts.extend(v.decode(errors="replace") for _, v in record.headers)
    assert len(texts) > len(logged)
    for text in texts:
        for secret in forbidden:
            assert secret not in text
        for number in re.findall(r"(?<!\d)\d{9}(?!\d)", text):
            assert number not in {p[0] for p in PEOPLE}
