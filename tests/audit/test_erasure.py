"""Erasure end to end, on the real broker: afterwards the person is unreadable in intake
and in every export; figures, timelines and hash chains are unchanged; the erasure is on
record."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
import uuid

import pytest
import uvicorn
from fastapi.testclient import TestClient

from contracts import kafka
from contracts.access import Credentials
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import TrajectoryOpened
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.service import store_env
from infra.demo import write_credentials
from intake.api import create_api as intake_api
from intake.application import IntakeApplication, IntakeConfig
from reporting import audit
from reporting.api import create_api as reporting_api
from reporting.store import ReportingStore
from tests.support.kafka_tools import eventually, fresh_topics

pytestmark = [pytest.mark.kafka]
PERSON = {"bsn": "262455407", "name": "Wim Wisbaar", "date_of_birth": "1966-06-16"}


def serve(app) -> tuple[str, uvicorn.Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


async def test_after_erasure_the_person_is_gone_and_everything_else_stays(bootstrap, tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    credentials = Credentials.from_file(path)
    topics = await fresh_topics(bootstrap, "intake")
    intake = IntakeApplication(store_env(f"sqlite:///{tmp_path}/intake.db"), config=IntakeConfig(pseudonym_key=b"k"))
    reporting = ReportingStore(f"sqlite:///{tmp_path}/reporting.db")
    reporting.group = f"reporting-{uuid.uuid4().hex[:6]}"
    await fresh_topics(bootstrap, groups=(reporting.group,))
    intake_url, server = serve(intake_api(intake, credentials))
    report = TestClient(reporting_api(reporting, credentials, intake_url=intake_url, bootstrap_servers=bootstrap))
    case_system = {"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}
    producer = kafka.producer(bootstrap, "erasure-test")
    await producer.start()
    relay = OutboxRelay(app=intake, translate=intake.integration_events, producer=producer,
                        topic=topics["intake"], system="tweespoor-intake")
    inbox = Inbox(bootstrap_servers=bootstrap, topics=[topics["intake"]], target=reporting, producer=producer)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(inbox.run())]
    try:
        body = PERSON | {"municipality": "alkmaar", "programme": "focus2move", "benefit": "bijstand",
                         "distance_to_labour_market": "large", "referred_on": "2026-11-02", "caseworker_id": "cw"}
        created = await asyncio.to_thread(lambda: TestClient(intake_api(intake, credentials)).post(
            "/referrals", json=body, headers=case_system).json())
        # the trajectory service opens it (produced here directly: it is not under test),
        # after the referral is on Kafka, as the real one would
        await eventually(lambda: relay.position() == intake.recorder.max_notification_id(), timeout=30)
        opened = envelope(TrajectoryOpened(
            trajectory_id=uuid.UUID(created["trajectory_id"]), referral_id=uuid.UUID(created["referral_id"]),
            client_id=uuid.UUID(created["client_id"]), municipality="alkmaar", programme="focus2move",
            opened_on=dt.date(2026, 11, 3)), source=source_urn("alkmaar", "tweespoor-trajectory"),
            origin="opened", sequence=1, time=dt.datetime.now(dt.UTC))
        key, value, headers = to_record(opened)
        await producer.send_and_wait(topics["intake"], value, key=key, headers=headers)
        await eventually(lambda: (reporting.document("trajectory", created["trajectory_id"]) or {}).get("opened_on"),
                         timeout=60)
        esf = report.get("/exports/esf-participants.csv?with_bsn=true", headers=case_system).text
        assert PERSON["bsn"] in esf
        figures_before = report.get("/figures", headers=case_system).json()
        kafka_before = await audit.from_kafka(bootstrap, audit.positions_of(
            reporting.document("trajectory", created["trajectory_id"])))

        erased = await asyncio.to_thread(lambda: TestClient(intake_api(intake, credentials)).post(
            f"/referrals/{created['referral_id']}/person/erasure", json={"reason": "request"},
            headers=case_system))
        assert erased.status_code == 200
        doc = await eventually(lambda: (d := reporting.document("trajectory", created["trajectory_id"]))
                               and d.get("erased") and d, timeout=60)

        gone = await asyncio.to_thread(lambda: TestClient(intake_api(intake, credentials)).get(
            f"/referrals/{created['referral_id']}/person", headers=case_system))
        assert gone.status_code == 410
        esf_after = report.get("/exports/esf-participants.csv?with_bsn=true", headers=case_system).text
        assert PERSON["bsn"] not in esf_after and esf_after.count("\n") == esf.count("\n")
        assert report.get("/figures", headers=case_system).json() == figures_before
        kafka_after = await audit.from_kafka(bootstrap, audit.positions_of(doc))
        assert [e.attributes.id for e in kafka_after][:len(kafka_before)] == [e.attributes.id for e in kafka_before]
        assert kafka_after[-1].attributes.type.endswith("privacy.person-erased.v1")
        for stream in intake.recorder.select_notifications(None, 100):
            assert intake.verify_chain(stream.originator_id).intact
        sealed = intake.repository.get(uuid.UUID(created["referral_id"])).sealed_person
        assert intake.vault.open(uuid.UUID(created["client_id"]), sealed) is None
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        server.should_exit = True
        intake.close()
        reporting.close()
