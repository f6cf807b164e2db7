"""When the store or the broker is away: a clear 503 with Retry-After (store down), or
the request accepted into the outbox (broker down); recovery without anyone's help, and
nothing acknowledged that is later lost."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from fastapi.testclient import TestClient

from contracts import kafka
from contracts.access import Credentials
from contracts.kafka import ensure_topics
from contracts.outbox import OutboxRelay
from contracts.service import store_env
from contracts.topics import Topic
from infra.demo import write_credentials
from infra.kafka import LocalKafka
from infra.postgres import LocalPostgres, ensure_installed
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig
from tests.support.kafka_tools import read_all

BODY = {"bsn": "111222333", "name": "Rosa Terug", "date_of_birth": "1988-08-08",
        "municipality": "heiloo", "programme": "social-activation", "benefit": "bijstand",
        "distance_to_labour_market": "very-large", "referred_on": "2026-11-02", "caseworker_id": "cw"}


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return Credentials.from_file(path), {"Authorization": f"Bearer {tokens['heiloo-case-system']}"}


@pytest.mark.postgres
def test_with_postgresql_down_intake_answers_503_and_recovers_by_itself(credentials):
    ensure_installed()
    with LocalPostgres() as server:
        server.create_database("intake")
        app = IntakeApplication(store_env(server.url("intake")), config=IntakeConfig(pseudonym_key=b"k"))
        client = TestClient(create_api(app, credentials[0]))
        assert client.post("/referrals", json=BODY, headers=credentials[1]).status_code == 201

        server.stop()
        down = client.post("/referrals", json=BODY | {"programme": "reintegration", "benefit": "none",
                                                      "uwv_registered_on": "2026-01-01"},
                           headers=credentials[1])
        assert down.status_code == 503
        assert down.headers["retry-after"] and down.headers["content-type"] == "application/problem+json"

        server.start()
        again = None
        for _ in range(20):  # the pool finds its feet again
            again = client.post("/referrals", json=BODY | {"programme": "reintegration", "benefit": "none",
                                                           "uwv_registered_on": "2026-01-01"},
                                headers=credentials[1])
            if again.status_code != 503:
                break
        assert again.status_code == 201
        app.close()


@pytest.mark.kafka
async def test_with_kafka_down_intake_accepts_into_the_outbox_and_publishes_when_it_returns(credentials, tmp_path):
    broker = LocalKafka()
    broker.start()
    try:
        topic = "test.backpressure.intake"
        await ensure_topics(broker.bootstrap_servers, (Topic(topic),))
        app = IntakeApplication(store_env(f"sqlite:///{tmp_path}/intake.db"),
                                config=IntakeConfig(pseudonym_key=b"k"))
        client = TestClient(create_api(app, credentials[0]))
        producer = kafka.producer(broker.bootstrap_servers, "backpressure")
        await producer.start()
        relay = OutboxRelay(app=app, translate=app.integration_events, producer=producer,
                            topic=topic, system="tweespoor-intake")
        running = asyncio.create_task(relay.run())

        broker.stop()
        accepted = client.post("/referrals", json=BODY, headers=credentials[1])
        assert accepted.status_code == 201  # the store is up: the outbox has it
        await asyncio.sleep(2)
        broker.start()

        deadline = asyncio.get_running_loop().time() + 90
        while relay.position() < app.recorder.max_notification_id():
            assert asyncio.get_running_loop().time() < deadline, "the relay did not recover"
            await asyncio.sleep(0.5)
        records = await read_all(broker.bootstrap_servers, topic)
        assert [r.key.decode() for r in records] == [accepted.json()["trajectory_id"]]
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await producer.stop()
        app.close()
    finally:
        broker.close()
