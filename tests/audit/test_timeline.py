"""Audit replay over the real broker: one trajectory's timeline from Kafka and from the
services' stores, the two compared, its state as of a date on both time axes, replay
reading only its own events, and an access log of every audit read."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import kafka, tracing
from contracts.access import Credentials
from contracts.audit import store_timeline
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import ContractStarted, PlacedInJob, TrajectoryOpened
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.service import store_env
from infra.demo import write_credentials
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person
from reporting import audit
from reporting.api import create_api
from reporting.store import ReportingStore
from tests.support.kafka_tools import eventually, fresh_topics
from trajectory.application import TrajectoryApplication

try:  # where the trajectory service keeps its translation
    from trajectory.integration import integration_events as trajectory_events
except ImportError:
    from trajectory.application import integration_events as trajectory_events

pytestmark = [pytest.mark.kafka]

# Made-up numbers passing the 11-test; with two programmes each, none is referred twice.
OTHERS = ["725763863", "162275869", "192285142", "691682483", "987825707", "688136138",
          "864623112", "321146487", "187891151", "883235912", "178598835", "467279627",
          "738199795", "173833652", "813128006", "831472844", "527239380", "545921235",
          "262455407", "732566551"]


def refer(app: IntakeApplication, n: int) -> dict:
    return app.refer(ReferralInput(
        person=Person("111222333", "Ida Auditspoor", dt.date(1970, 7, 7)), municipality="alkmaar",
        programme="focus2move" if n % 2 else "social-activation", benefit="bijstand", uwv_registered_on=None,
        distance_to_labour_market="large", referred_on=dt.date(2026, 10, 1), caseworker_id=f"cw-{n}"))[1]


@pytest.fixture
async def system(bootstrap, tmp_path):
    topics = await fresh_topics(bootstrap, "intake", "trajectory")
    intake = IntakeApplication(store_env(f"sqlite:///{tmp_path}/intake.db"), config=IntakeConfig(pseudonym_key=b"k"))
    trajectory = TrajectoryApplication(store_env(f"sqlite:///{tmp_path}/trajectory.db"))
    trajectory.group = f"trajectory-{uuid.uuid4().hex[:6]}"
    reporting = ReportingStore(f"sqlite:///{tmp_path}/reporting.db")
    reporting.group = f"reporting-{uuid.uuid4().hex[:6]}"
    await fresh_topics(bootstrap, groups=(trajectory.group, reporting.group))
    producer = kafka.producer(bootstrap, "audit-test")
    await producer.start()
    relays = [OutboxRelay(app=intake, translate=intake.integration_events, producer=producer,
                          topic=topics["intake"], system="tweespoor-intake"),
              OutboxRelay(app=trajectory, translate=trajectory_events, producer=producer,
                          topic=topics["trajectory"], system="tweespoor-trajectory")]
    tasks = [asyncio.create_task(r.run()) for r in relays] + [
        asyncio.create_task(Inbox(bootstrap_servers=bootstrap, topics=[topics["intake"]], target=trajectory,
                                  producer=producer).run()),
        asyncio.create_task(Inbox(bootstrap_servers=bootstrap, topics=list(topics.values()), target=reporting,
                                  producer=producer).run())]
    yield intake, trajectory, reporting, relays, topics, producer
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop()
    for closable in (intake, trajectory, reporting):
        closable.close()


def rows_read(intake: IntakeApplication, created: dict) -> int:
    """How many stored events a store-side replay of one trajectory reads."""
    rows: list[int] = []
    original = intake.recorder.select_events
    intake.recorder.select_events = lambda *a, **k: rows.append(len(r := original(*a, **k))) or r
    try:
        store_timeline(intake, intake.audit_index, intake.integration_events, "tweespoor-intake",
                       uuid.UUID(created["trajectory_id"]))
    finally:
        intake.recorder.select_events = original
    return sum(rows)


def opened(reporting: ReportingStore, trajectory_id: str):
    doc = reporting.document("trajectory", trajectory_id)
    return doc if doc and doc.get("opened_on") else None


async def test_the_timeline_from_kafka_and_from_the_stores_agree(system, bootstrap):
    intake, trajectory, reporting, relays, topics, _ = system
    created = refer(intake, 1)
    doc = await eventually(lambda: opened(reporting, created["trajectory_id"]), timeout=60)
    trajectory_id = uuid.UUID(created["trajectory_id"])

    on_kafka = await audit.from_kafka(bootstrap, audit.positions_of(doc))
    lines = audit.timeline(on_kafka)
    assert [line["what"].rsplit(".", 2)[-2] for line in lines] == ["client-referred", "opened"]
    assert [line["service"] for line in lines] == ["tweespoor-intake", "tweespoor-trajectory"]
    assert lines[0]["valid_on"] == "2026-10-01" and lines[0]["recorded_at"] <= lines[1]["recorded_at"]

    in_stores = []
    for app, relay in zip((intake, trajectory), relays, strict=True):
        events, chains = store_timeline(app, app.audit_index, relay.translate, relay.system, trajectory_id)
        assert chains and all(c.intact for c in chains)
        in_stores += events
    assert audit.compare(on_kafka, in_stores)["agree"] is True

    # An event that reached Kafka without coming from any store is named by the check.
    forged = envelope(TrajectoryOpened(**on_kafka[1].data.model_dump(exclude={"opened_on"}),
                                       opened_on=dt.date(2026, 1, 1)),
                      source=on_kafka[1].attributes.source, origin="forged", sequence=1,
                      time=dt.datetime.now(dt.UTC))
    key, value, headers = to_record(forged)
    await system[5].send_and_wait(topics["trajectory"], value, key=key, headers=headers)
    doc = await eventually(lambda: (d := reporting.document("trajectory", str(trajectory_id)))
                           and len(d["log"]) == 3 and d, timeout=30)
    verdict = audit.compare(await audit.from_kafka(bootstrap, audit.positions_of(doc)), in_stores)
    assert verdict["agree"] is False and verdict["only_on_kafka"] == [forged.attributes.id]


async def test_replaying_one_trajectory_reads_only_its_own_events(system, bootstrap):
    intake, _, reporting, _, _, _ = system
    first = refer(intake, 1)
    small = await eventually(lambda: opened(reporting, first["trajectory_id"]), timeout=60)
    small_read = len(await audit.from_kafka(bootstrap, audit.positions_of(small)))
    small_rows = rows_read(intake, first)
    for n in range(len(OTHERS)):  # the store and the topics grow twentyfold, with others
        intake.refer(ReferralInput(
            person=Person(OTHERS[n % len(OTHERS)], "Ida Auditspoor", dt.date(1970, 7, 7)),
            municipality="alkmaar", programme=("social-activation", "reintegration")[n % 2],
            benefit=("wao", "none")[n % 2], uwv_registered_on=dt.date(2026, 1, 1),
            distance_to_labour_market="large", referred_on=dt.date(2026, 10, 1), caseworker_id=f"cw-{n}"))
    await eventually(lambda: len(reporting.documents("trajectory")) >= 1 + len(OTHERS), timeout=60)
    large = reporting.document("trajectory", first["trajectory_id"])
    large_read = len(await audit.from_kafka(bootstrap, audit.positions_of(large)))
    assert large_read == small_read == 2  # the ratio is 1: its own two events, nothing else
    assert rows_read(intake, first) == small_rows  # from the store too: the ratio is 1


def test_as_of_on_both_time_axes_with_a_late_correction():
    t = uuid.uuid4()
    source = source_urn("alkmaar", "tweespoor-trajectory")

    def at(data, recorded: str, n: int):
        return envelope(data, source=source, origin=f"x/{n}", sequence=n,
                        time=dt.datetime.fromisoformat(recorded).replace(tzinfo=dt.UTC))

    events = [
        at(TrajectoryOpened(trajectory_id=t, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                            municipality="alkmaar", programme="focus2move", opened_on=dt.date(2026, 1, 5)),
           "2026-01-05T09:00:00", 1),
        at(ContractStarted(trajectory_id=t, employer="WNK", starts_on=dt.date(2026, 1, 12)),
           "2026-01-12T10:00:00", 2),
        # reported late: the job started on 2 March, the provider told us on 20 March
        at(PlacedInJob(trajectory_id=t, municipality="alkmaar", employer="Bakkerij", hours_per_week=24,
                       contract_type="fixed-term", starts_on=dt.date(2026, 3, 2)), "2026-03-20T15:00:00", 3),
        # a correction, recorded in April: it was 32 hours, not 24
        at(PlacedInJob(trajectory_id=t, municipality="alkmaar", employer="Bakkerij", hours_per_week=32,
                       contract_type="fixed-term", starts_on=dt.date(2026, 3, 2)), "2026-04-02T08:00:00", 4),
    ]
    state = lambda valid, known: audit.as_of(events, valid=dt.date.fromisoformat(valid),
                                             known=dt.datetime.fromisoformat(known).replace(tzinfo=dt.UTC))
    assert "placement" not in state("2026-03-10", "2026-03-15T00:00")  # not yet known
    assert state("2026-03-10", "2026-03-25T00:00")["placement"]["hours_per_week"] == 24  # known, uncorrected
    assert state("2026-03-10", "2026-05-01T00:00")["placement"]["hours_per_week"] == 32  # after the correction
    assert "placement" not in state("2026-02-28", "2026-05-01T00:00")  # had not happened by then
    assert state("2026-01-10", "2026-05-01T00:00").get("contract") is None
    assert state("2026-01-31", "2026-05-01T00:00")["contract"]["starts_on"] == "2026-01-12"


def test_every_audit_read_is_in_the_access_log(tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    store = ReportingStore(f"sqlite:///{tmp_path}/reporting.db")
    client = TestClient(create_api(store, Credentials.from_file(path)))
    auditor = {"Authorization": f"Bearer {tokens['esf-auditor']}"}
    unknown = uuid.uuid4()
    assert client.get(f"/audit/trajectories/{unknown}/as-of", headers=auditor).status_code == 404
    assert client.get(f"/audit/trajectories/{unknown}/timeline",
                      headers={"Authorization": f"Bearer {tokens['alkmaar-staff']}"}).status_code == 403
    log = client.get("/audit/access-log", headers=auditor).json()["entries"]
    assert [(e["who"], e["trajectory_id"], e["action"]) for e in log] == [("esf-auditor", str(unknown), "as-of")]
    store.close()


def test_an_access_log_entry_carries_the_trace_of_the_read(tmp_path, database_url):
    """The access log names the reader; the processing logs name no one: the trace id is
    what links the two. An access log from before trace ids gains the column."""
    url = database_url("reporting_access")
    store = ReportingStore(url)
    with store._transaction() as cur:  # an access log as it was before trace ids
        cur.execute("CREATE TABLE access_log (at TEXT NOT NULL, who TEXT NOT NULL, "
                    "trajectory_id TEXT NOT NULL, action TEXT NOT NULL)")
        cur.execute(store._sql("INSERT INTO access_log VALUES (?, ?, ?, ?)"),
                    ("2026-11-01T10:00:00+00:00", "esf-auditor", "earlier", "timeline"))
    path, tokens = write_credentials(tmp_path / "config")
    api = create_api(store, Credentials.from_file(path))
    tracing.install(api, system="tweespoor-reporting")
    client = TestClient(api)
    auditor = {"Authorization": f"Bearer {tokens['esf-auditor']}"}
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    unknown = uuid.uuid4()
    read = client.get(f"/audit/trajectories/{unknown}/as-of",
                      headers=auditor | {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert read.status_code == 404
    assert read.headers["traceparent"].split("-")[1] == trace_id  # the same trace answers
    log = client.get("/audit/access-log", headers=auditor).json()["entries"]
    assert [(e["trajectory_id"], e["trace_id"]) for e in log] == [("earlier", None), (str(unknown), trace_id)]
    store.close()
