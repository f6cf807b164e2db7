"""The employment registry end to end, on SQLite and PostgreSQL and the real Kafka broker:
a cohort through LBU refusal and placement, the request file, the simulated registry,
the import, the observations on Kafka (keyed by trajectory, no BSN), reporting's documents
carrying them, and erasure leaving no BSN readable in the kept files or the store."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from contracts import kafka
from contracts.envelope import envelope, from_record, source_urn
from contracts.events import (
    BenefitObserved, EmploymentObserved, PersonErased, PlacedInJob, TrajectoryOpened,
)
from contracts.outbox import OutboxRelay
from contracts.service import store_env
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig
from intake.simulated_registry import simulate
from reporting.store import ReportingStore
from tests.support.kafka_tools import fresh_topics, read_all
from tests.support.clocks import Clock

pytestmark = [pytest.mark.kafka]

# Made-up people: every BSN passes the 11-test.
REFUSER = ("100000009", "Registry Kafka Weigeraar", "1983-02-03")
PLACED = ("999999990", "Registry Kafka Geplaatst", "1977-06-07")
BSNS = {REFUSER[0], PLACED[0]}


@dataclass
class World:
    """Intake on a fresh topic with its HTTP API and relay, and a reporting store."""

    app: IntakeApplication
    clock: Clock
    topic: str
    reporting: ReportingStore
    bootstrap: str
    http: TestClient
    headers: dict[str, str]
    relay: OutboxRelay


@pytest.fixture
async def world(bootstrap, database_url, credentials):
    topics = await fresh_topics(bootstrap, "intake", groups=("intake",))
    clock = Clock(dt.date(2026, 1, 10))
    app = IntakeApplication(store_env(database_url("intake")), config=IntakeConfig(pseudonym_key=b"r"),
                            clock=clock)
    reporting = ReportingStore(database_url("reporting"))
    producer = kafka.producer(bootstrap, "intake-registry-test")
    await producer.start()
    w = World(app, clock, topics["intake"], reporting, bootstrap, TestClient(create_api(app, credentials[0])),
              {"Authorization": f"Bearer {credentials[1]['alkmaar-case-system']}"},
              OutboxRelay(app=app, translate=app.integration_events, producer=producer,
                          topic=topics["intake"], system="tweespoor-intake"))
    yield w
    await producer.stop()
    reporting.close()
    app.close()


def person(p):
    return {"bsn": p[0], "name": p[1], "date_of_birth": p[2]}


def through_lbu_and_placement(w) -> dict:
    offer = w.http.post("/job-offers", headers=w.headers, json={
        **person(REFUSER), "municipality": "alkmaar", "offered_on": "2026-01-05", "caseworker_id": "cw"}).json()
    assert w.http.post(f"/job-offers/{offer['offer_id']}/refusal", headers=w.headers,
                       json={"refused_on": "2026-01-06"}).status_code == 200
    w.clock.today = dt.date(2026, 5, 1)
    assert w.app.mark_unknown_destinations(["alkmaar"]) == 1
    referral = w.http.post("/referrals", headers=w.headers, json={
        **person(PLACED), "municipality": "alkmaar", "programme": "focus2move", "benefit": "bijstand",
        "distance_to_labour_market": "large", "referred_on": "2026-01-05", "caseworker_id": "cw"}).json()
    trajectory_id = uuid.UUID(referral["trajectory_id"])
    source = source_urn("alkmaar", "tweespoor-trajectory")
    for n, data in enumerate((
            TrajectoryOpened(trajectory_id=trajectory_id, referral_id=uuid.UUID(referral["referral_id"]),
                             client_id=uuid.UUID(referral["client_id"]), municipality="alkmaar",
                             programme="focus2move", opened_on=dt.date(2026, 1, 12)),
            PlacedInJob(trajectory_id=trajectory_id, municipality="alkmaar", employer="Bakkerij",
                        hours_per_week=32, contract_type="fixed-term", starts_on=dt.date(2026, 3, 2)))):
        w.app.apply(envelope(data, source=source, origin=f"t/{n}", sequence=n + 1,
                             time=dt.datetime.now(dt.UTC)), "tweespoor.trajectory.events.v1", 0, n)
    w.clock.today = dt.date(2026, 11, 23)
    return {"offer": offer, "referral": referral}


async def published(w) -> list:
    await w.relay.relay_once()
    return list(await read_all(w.bootstrap, w.topic))


def fold(w, records) -> None:
    for record in records:
        w.reporting.apply(from_record(record.key, record.value, list(record.headers)),
                          w.topic, record.partition, record.offset)


async def test_a_cohort_is_followed_through_the_registry_onto_kafka_and_into_reporting(world):
    w = world
    made = through_lbu_and_placement(w)
    request = w.http.post("/registry/requests", headers=w.headers, json={"municipality": "alkmaar"})
    assert request.status_code == 201, request.text
    answers = simulate(request.content, 11)
    imported = w.http.post("/registry/answers", content=answers,
                           headers={**w.headers, "Content-Type": "text/csv"})
    assert imported.status_code == 200 and imported.json()["imported"] == 3, imported.text

    records = await published(w)
    events = [(r.key, from_record(r.key, r.value, list(r.headers)).data) for r in records]
    observed = [(k, e) for k, e in events if isinstance(e, (EmploymentObserved, BenefitObserved))]
    assert len(observed) == 6
    for key, event in observed:
        assert key == str(event.trajectory_id).encode()
    offer_id, trajectory_id = made["offer"]["offer_id"], made["referral"]["trajectory_id"]
    by_point = {(type(e).__name__, e.point): e for _, e in observed}
    assert str(by_point["EmploymentObserved", "lbu-3-months"].offer_id) == offer_id
    assert str(by_point["BenefitObserved", "placement-6-months"].trajectory_id) == trajectory_id
    assert by_point["EmploymentObserved", "placement-6-months"].observed_on == dt.date(2026, 9, 2)
    assert all(str(e.client_id) in (made["offer"]["client_id"], made["referral"]["client_id"])
               for _, e in observed)
    for record in records:
        text = (record.value or b"").decode() + "".join(v.decode() for _, v in record.headers)
        assert not any(bsn in text for bsn in BSNS)

    # Reporting folds them like any other event: the offer's document, the trajectory's.
    fold(w, records)
    lbu = w.reporting.document("offer", offer_id)
    placed = w.reporting.document("trajectory", trajectory_id)
    assert set(lbu["registry"]) == {"lbu-3-months", "lbu-6-months"}
    assert set(placed["registry"]) == {"placement-6-months"}
    answer = next(iter(placed["registry"]["placement-6-months"].values()))
    line = next(r for r in csv.DictReader(io.StringIO(answers.decode())) if r["line"] == "3")
    assert answer["employed"] == (line["employed"] == "true")
    assert answer["on_benefit"] == (line["on_benefit"] == "true")

    # The same file again: nothing recorded, nothing more on Kafka.
    again = w.http.post("/registry/answers", content=answers, headers={**w.headers, "Content-Type": "text/csv"})
    assert again.status_code == 200 and again.json()["imported"] == 0
    assert len(await published(w)) == len(records)


async def test_a_bad_file_changes_nothing_and_erasure_leaves_no_bsn_readable(world):
    w = world
    made = through_lbu_and_placement(w)
    request = w.http.post("/registry/requests", headers=w.headers, json={"municipality": "alkmaar"})
    request_id = request.headers["location"].rsplit("/", 1)[1]
    answers = simulate(request.content, 3)
    before = await published(w)
    swapped = answers.replace(PLACED[0].encode(), REFUSER[0].encode())  # row 4 names the wrong person
    bad = w.http.post("/registry/answers", content=swapped, headers={**w.headers, "Content-Type": "text/csv"})
    assert bad.status_code == 422
    assert [(e["row"], e["field"]) for e in bad.json()["errors"]] == [(4, "bsn")]
    assert not any(bsn in bad.text for bsn in BSNS)
    assert len(await published(w)) == len(before)
    assert w.http.get(f"/registry/requests/{request_id}", headers=w.headers).json()["answered"] == 0

    assert w.http.post("/registry/answers", content=answers,
                       headers={**w.headers, "Content-Type": "text/csv"}).status_code == 200
    records = await published(w)
    fold(w, records)
    trajectory_id = made["referral"]["trajectory_id"]
    document = w.reporting.document("trajectory", trajectory_id)["registry"]

    erased = w.http.post(f"/referrals/{made['referral']['referral_id']}/person/erasure", headers=w.headers,
                         json={"reason": "request"})
    assert erased.status_code == 200
    records = await published(w)
    assert any(isinstance(from_record(r.key, r.value, list(r.headers)).data, PersonErased) for r in records)
    fold(w, records)
    assert w.reporting.document("trajectory", trajectory_id)["registry"] == document
    for name in ("request.csv", "answers.csv"):
        kept = w.http.get(f"/registry/requests/{request_id}/{name}", headers=w.headers)
        assert kept.status_code == 200 and PLACED[0] not in kept.text and REFUSER[0] in kept.text
    # Nothing intake stores holds a BSN in clear: the kept files are rendered, not stored.
    stored = b"".join(n.state for n in w.app.recorder.select_notifications(None, 10_000))
    assert not any(bsn.encode() in stored for bsn in BSNS)
