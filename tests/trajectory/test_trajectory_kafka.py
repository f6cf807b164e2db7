"""The trajectory service over the real Kafka broker and real stores (SQLite and
PostgreSQL): a full Focus2Move trajectory from a referral in intake to a placement with
both tracks interleaved, capacity running out and freeing, and the provider webhooks in
(bad signature, stale timestamp, replayed id, another provider's trajectory)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import kafka
from contracts.access import Credentials
from contracts.envelope import envelope, from_record, source_urn, to_record
from contracts.events import ClientReferred, ReferralWithdrawn
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.service import store_env
from contracts.webhooks import sign
from infra.demo import write_credentials
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person
from tests.support.kafka_tools import eventually, fresh_topics, read_all
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication, TrajectoryConfig
from trajectory.integration import integration_events
from trajectory.tender import parse

pytestmark = [pytest.mark.kafka]

LEAD = "Directe bemiddeling en Nazorg"
PERSON = Person("123456782", "Sanne Proefpersoon", dt.date(1979, 6, 14))  # made up; passes the 11-test


def small_tender(places: int = 1):
    return parse({
        "tender": {"slug": "small", "title": "A small tender"},
        "programme": [{
            "slug": "reintegration", "name": "Reïntegratie", "starts_on": dt.date(2006, 1, 1),
            "ends_on": dt.date(2008, 4, 30), "yearly_volume": 10, "municipalities": ["alkmaar", "heiloo"],
            "disciplines": ["Voortraject", LEAD], "entry_discipline": "Voortraject"}],
        "contract": [{"provider": "nieuwland", "programme": "reintegration", "discipline": d,
                      "municipalities": ["alkmaar", "heiloo"], "places": places, "tariff_eur": 1000}
                     for d in ("Voortraject", LEAD)],
    }, source="small.toml")


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return Credentials.from_file(path), tokens, path


@pytest.fixture
async def producer(bootstrap):
    producer = kafka.producer(bootstrap, "trajectory-test")
    await producer.start()
    yield producer
    await producer.stop()


class World:
    """A trajectory service on a fresh store, fresh topics and its own consumer group."""

    def __init__(self, app: TrajectoryApplication, topics: dict[str, str], bootstrap: str,
                 producer: Any, credentials: Credentials, tokens: dict[str, str], secrets: dict[str, str]):
        self.app, self.topics, self.bootstrap, self.producer = app, topics, bootstrap, producer
        self.client = TestClient(create_api(app, credentials))
        self.tokens, self.secrets = tokens, secrets
        self.relay = OutboxRelay(app=app, translate=integration_events, producer=producer,
                                 topic=topics["trajectory"], system="tweespoor-trajectory")
        self.offset = 0

    async def consume_until(self, condition, timeout: float = 30.0) -> None:
        inbox = Inbox(bootstrap_servers=self.bootstrap, topics=[self.topics["intake"]],
                      target=self.app, producer=self.producer)
        task = asyncio.create_task(inbox.run())
        try:
            await eventually(lambda: task.done() or condition(), timeout=timeout)
            if task.done():
                task.result()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def publish(self, data: Any) -> None:
        """As intake publishes: a CloudEvent keyed by the trajectory."""
        self.offset += 1
        cloud_event = envelope(data, source=source_urn(data.municipality, "tweespoor-intake"),
                               origin=f"test/{uuid.uuid4()}/0", sequence=self.offset,
                               time=dt.datetime.now(dt.UTC))
        key, value, headers = to_record(cloud_event)
        await self.producer.send_and_wait(self.topics["intake"], value, key=key, headers=headers)

    def report(self, provider: str, trajectory_id: Any, body: dict[str, Any], *, msg_id: str | None = None,
               timestamp: dt.datetime | None = None, secret: str | None = None):
        content = json.dumps(body).encode()
        headers = sign(secret or self.secrets[provider], content, msg_id=msg_id, timestamp=timestamp)
        return self.client.post(f"/providers/{provider}/trajectories/{trajectory_id}/reports",
                                content=content, headers=headers)

    def settle(self) -> None:
        while self.app.run_desk():
            pass

    async def published(self, trajectory_id: Any = None) -> list[Any]:
        await self.relay.relay_once()
        while await self.relay.relay_once():
            pass
        records = await read_all(self.bootstrap, self.topics["trajectory"])
        events = [from_record(r.key, r.value, list(r.headers)) for r in records]
        return [e for e in events if trajectory_id is None or e.attributes.subject == str(trajectory_id)]

    def view(self, trajectory_id: Any) -> dict[str, Any]:
        return self.app.trajectory(uuid.UUID(str(trajectory_id)))


@pytest.fixture
async def world(bootstrap, database_url, producer, credentials, request):
    async def make(tender=None) -> World:
        group = f"trajectory-{uuid.uuid4().hex[:8]}"
        topics = await fresh_topics(bootstrap, "intake", "trajectory", groups=(group,))
        app = TrajectoryApplication(store_env(database_url(f"trajectory_{uuid.uuid4().hex[:6]}")),
                                    tender=tender, config=TrajectoryConfig(allow_http_callbacks=True))
        app.group = group
        request.addfinalizer(app.close)
        secrets = {p.provider: p.webhook_secret for p in credentials[0] if p.kind == "provider"}
        return World(app, topics, bootstrap, producer, credentials[0], credentials[1], secrets)

    return make


def types(events: list[Any]) -> list[str]:
    return [e.attributes.type.split(".")[-2] for e in events]


async def test_a_focus2move_trajectory_from_referral_to_placement_with_both_tracks_interleaved(
        world, bootstrap, database_url, producer):
    w: World = await world()
    intake = IntakeApplication(store_env(database_url("intake")), config=IntakeConfig(pseudonym_key=b"k"))
    status, referral = intake.refer(ReferralInput(
        person=PERSON, municipality="alkmaar", programme="focus2move", benefit="bijstand",
        uwv_registered_on=None, distance_to_labour_market="large", referred_on=dt.date(2008, 2, 4),
        caseworker_id="cw-1"))
    assert status == 201 and referral["status"] == "referred"
    await OutboxRelay(app=intake, translate=intake.integration_events, producer=producer,
                      topic=w.topics["intake"], system="tweespoor-intake").relay_once()
    intake.close()
    trajectory = referral["trajectory_id"]

    await w.consume_until(lambda: uuid.UUID(trajectory) in w.app.repository)
    w.settle()
    assert w.view(trajectory)["assignments"] == [{"discipline": LEAD, "provider": "agens", "since": "2008-02-04"}]

    debts, addiction = str(uuid.uuid4()), str(uuid.uuid4())
    steps = [  # (provider, report): the work track and the obstacle track side by side
        ("agens", {"type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-08"}),
        ("agens", {"type": "contract-started", "discipline": LEAD, "starts_on": "2008-02-11",
                   "ends_on": "2008-08-10"}),
        ("agens", {"type": "obstacle-identified", "discipline": LEAD, "obstacle_id": debts,
                   "kind": "debts", "identified_on": "2008-02-12"}),
        ("agens", {"type": "obstacle-identified", "discipline": LEAD, "obstacle_id": addiction,
                   "kind": "addiction", "identified_on": "2008-03-03"}),
        ("dhg", {"type": "obstacle-resolved", "discipline": "Schuldhulpverlening", "obstacle_id": debts,
                 "outcome": "manageable", "resolved_on": "2008-06-02"}),
        ("agens", {"type": "contract-extended", "discipline": LEAD, "extended_on": "2008-07-28",
                   "ends_on": "2009-02-10"}),
        ("inova", {"type": "obstacle-resolved", "discipline": "Verslavingszorg", "obstacle_id": addiction,
                   "outcome": "resolved", "resolved_on": "2008-09-15"}),
        ("inova", {"type": "discipline-completed", "discipline": "Verslavingszorg", "completed_on": "2008-09-15"}),
        ("agens", {"type": "placed-in-job", "discipline": LEAD, "employer": "Bakkerij De Korenschoof",
                   "hours_per_week": 32, "contract_type": "fixed-term", "starts_on": "2008-10-01"}),
    ]
    for provider, body in steps:
        response = w.report(provider, trajectory, body)
        assert response.status_code == 202, (body["type"], response.text)
        w.settle()

    view = w.view(trajectory)
    assert view["state"] == "placed" and view["closing"] == {"reason": "placed", "closed_on": "2008-10-01"}
    assert view["work_track"]["state"] == "ended" and view["work_track"]["reason"] == "regular-job"

    events = await w.published(trajectory)
    assert types(events) == [
        "opened", "provider-assigned", "plan-agreed", "contract-started",
        "obstacle-identified", "provider-assigned",          # debts: Schuldhulpverlening at DHG
        "obstacle-identified", "provider-assigned",          # addiction: Verslavingszorg at INOVA
        "obstacle-resolved", "contract-extended", "obstacle-resolved", "provider-released",
        "placed-in-job", "contract-ended", "provider-released", "provider-released", "closed",
    ]
    assert [e.data.provider for e in events if types([e]) == ["provider-assigned"]] == ["agens", "dhg", "inova"]
    assert {e.attributes.source for e in events} == {source_urn("alkmaar", "tweespoor-trajectory")}
    sequences = [int(e.attributes.sequence) for e in events]
    assert sequences == sorted(sequences)
    records = await read_all(bootstrap, w.topics["trajectory"])
    assert {r.partition for r in records} == {records[0].partition}  # one key, one partition, in order
    everything = b"".join(r.value + b"".join(v for _, v in r.headers) for r in records)
    for personal in (PERSON.bsn, PERSON.name, "1979-06-14"):
        assert personal.encode() not in everything


async def test_capacity_runs_out_and_frees_over_kafka(world):
    w: World = await world(small_tender(places=1))
    ids = [uuid.uuid4() for _ in range(3)]
    # The first takes the one place; the other two arrive later, through whichever
    # partitions their keys fall in, and wait in the order they were referred.
    for i, trajectory_id in [(0, ids[0]), (2, ids[2]), (1, ids[1])]:
        await w.publish(ClientReferred(
            trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
            municipality="alkmaar", programme="reintegration", benefit="anw",
            referred_on=dt.date(2007, 3, 1) + dt.timedelta(days=i)))
        await w.consume_until(lambda t=trajectory_id: t in w.app.repository)
        w.settle()
    assert [w.view(t)["state"] for t in ids] == ["assigned", "waitlisted", "waitlisted"]

    first, second, third = ids
    assert w.report("nieuwland", first, {"type": "plan-agreed", "discipline": "Voortraject",
                                         "agreed_on": "2007-03-05"}).status_code == 202
    assert w.report("nieuwland", first, {"type": "discipline-completed", "discipline": "Voortraject",
                                         "completed_on": "2007-04-02"}).status_code == 202
    w.settle()
    assert [w.view(t)["state"] for t in ids] == ["active", "assigned", "waitlisted"]
    assert w.view(second)["assignments"][0]["since"] == "2007-04-02"

    await w.publish(ReferralWithdrawn(trajectory_id=second, referral_id=uuid.uuid4(), municipality="alkmaar",
                                      withdrawn_on=dt.date(2007, 4, 20), reason="moved-away"))
    await w.consume_until(lambda: w.view(second)["state"] == "closed")
    w.settle()
    assert w.view(third)["assignments"] == [{"discipline": "Voortraject", "provider": "nieuwland",
                                             "since": "2007-04-20"}]

    events = await w.published()
    per_trajectory = {t: types([e for e in events if e.attributes.subject == str(t)]) for t in ids}
    assert per_trajectory[first] == ["opened", "provider-assigned", "plan-agreed", "provider-released"]
    assert per_trajectory[second] == ["opened", "assignment-waitlisted", "provider-assigned",
                                      "provider-released", "closed"]
    assert per_trajectory[third] == ["opened", "assignment-waitlisted", "provider-assigned"]


async def test_a_referral_outside_the_contract_period_is_refused_on_kafka(world):
    w: World = await world()
    trajectory_id = uuid.uuid4()
    await w.publish(ClientReferred(
        trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(), municipality="bergen",
        programme="social-activation", benefit="wao", referred_on=dt.date(2026, 11, 2)))
    await w.consume_until(lambda: trajectory_id in w.app.repository)
    w.settle()
    [opened, refused] = await w.published(trajectory_id)
    assert refused.data.reason == "outside-contract-period" and refused.data.discipline == "Diagnose"


async def test_provider_webhooks_in_signature_timestamp_replay_and_tenancy(world):
    w: World = await world()
    trajectory_id = uuid.uuid4()
    await w.publish(ClientReferred(
        trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(), municipality="heiloo",
        programme="reintegration", benefit="none", referred_on=dt.date(2007, 9, 3)))
    await w.consume_until(lambda: trajectory_id in w.app.repository)
    w.settle()
    assert w.view(trajectory_id)["assignments"][0]["provider"] == "agens"  # Voortraject in Heiloo
    plan = {"type": "plan-agreed", "discipline": "Voortraject", "agreed_on": "2007-09-10",
            "disciplines": ["Arbeidsritme"]}
    recorded = w.app.recorder.max_notification_id()

    bad = w.report("agens", trajectory_id, plan, secret=w.secrets["dhg"])
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    stale = w.report("agens", trajectory_id, plan, timestamp=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert stale.status_code == 401
    future = w.report("agens", trajectory_id, plan, timestamp=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert future.status_code == 401
    other = w.report("dhg", trajectory_id, plan)
    assert other.status_code == 404
    assert w.app.recorder.max_notification_id() == recorded  # none of them stored anything

    first = w.report("agens", trajectory_id, plan, msg_id="msg_plan")
    replayed = w.report("agens", trajectory_id, plan, msg_id="msg_plan")
    assert first.status_code == replayed.status_code == 202 and first.json() == replayed.json()
    w.settle()

    events = await w.published(trajectory_id)
    assert types(events) == ["opened", "provider-assigned", "plan-agreed", "provider-assigned"]
    assert events[-1].data.discipline == "Arbeidsritme" and events[-1].data.provider == "iwa-wurkympuls"

    iwa = w.client.get(f"/trajectories/{trajectory_id}", headers={
        "Authorization": f"Bearer {w.tokens['iwa-wurkympuls-provider']}"})
    assert [a["discipline"] for a in iwa.json()["assignments"]] == ["Arbeidsritme"]
    assert w.client.get(f"/trajectories/{trajectory_id}", headers={
        "Authorization": f"Bearer {w.tokens['dhg-provider']}"}).status_code == 404


async def test_a_report_is_stored_first_and_published_when_kafka_is_back(world, bootstrap):
    """The report is answered from the store; the relay publishes it whenever it can."""
    w: World = await world()
    trajectory_id = uuid.uuid4()
    await w.publish(ClientReferred(
        trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(), municipality="alkmaar",
        programme="focus2move", benefit="bijstand", referred_on=dt.date(2008, 2, 4)))
    await w.consume_until(lambda: trajectory_id in w.app.repository)
    w.settle()
    unreachable = kafka.producer("127.0.0.1:9", "nowhere")  # a broker that is not there
    stranded = OutboxRelay(app=w.app, translate=integration_events, producer=unreachable,
                           topic=w.topics["trajectory"], system="tweespoor-trajectory")
    response = w.report("agens", trajectory_id, {"type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-08"})
    assert response.status_code == 202
    with pytest.raises(Exception):
        await asyncio.wait_for(stranded.relay_once(), timeout=2)
    assert types(await w.published(trajectory_id)) == ["opened", "provider-assigned", "plan-agreed"]
