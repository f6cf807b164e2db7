"""Chain heads anchored outside the store: signed checkpoints on the real broker, the
real stores (SQLite and PostgreSQL) behind them.

Someone with write access to the database can edit an event and recompute the hash
chain from there to the head, so that the chain verifies against itself. The heads were
signed, with a key that is not in the database, and published to the audit topic: the
load, the store audit and the full store audit compare with them and catch it, without
replaying the event topics. A checkpoint signed with another key (someone who can write
to Kafka but has not the key) is not believed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import chain, checkpoints, kafka
from contracts.chain import GENESIS, MAGIC, unwrap
from contracts.checkpoints import Checkpointer, public_key, sign, verified
from contracts.web.audit import install_audit
from contracts.topics import CHECKPOINTS, TOPICS, Topic
from infra.demo import write_credentials
from services.trajectory.tests.conftest import auth, refer, with_administrator
from tests.audit.test_tampered_state import execute, stored_id, table
from tests.support.kafka_tools import eventually, read_all
from trajectory.api import create_api
from trajectory.contracting import ProviderContract

pytestmark = [pytest.mark.kafka]

SEED = bytes(range(32))  # the test's signing key: in production from the environment or a key file


def recompute(app, url: str, originator_id: uuid.UUID, old: bytes, new: bytes) -> None:
    """Edits the stream's events as someone with write access to the database would who
    also knows how the chain is made: every hash from the edit to the head recomputed."""
    previous = GENESIS
    for stored in app.recorder.select_events(originator_id):
        _, _, state = unwrap(stored)
        state = state.replace(old, new)
        own = chain._digest(stored.originator_id, stored.originator_version, stored.topic, previous, state)
        execute(url, f"UPDATE {table(url)} SET state = %s WHERE originator_id = %s AND originator_version = %s",
                (MAGIC + previous + own + state, stored_id(url, originator_id), stored.originator_version))
        previous = own


@pytest.fixture
async def world(database_url, tmp_path, bootstrap):
    from contracts.runtime import Settings
    from trajectory.main import build

    url = database_url("anchored")
    path, tokens = write_credentials(tmp_path / "config")
    credentials, tokens, _ = with_administrator(path, tokens)
    # Wired as the service's main wires it (the audit endpoints included), minus Kafka.
    service = build(Settings("trajectory", bootstrap, url, "127.0.0.1", 0), {"TWEESPOOR_CREDENTIALS_FILE": str(path)})
    app = service.app
    api = create_api(app, credentials)
    install_audit(api, app, service.translate, "tweespoor-trajectory", credentials)
    topic = f"test.{uuid.uuid4().hex[:10]}.checkpoints"
    await kafka.ensure_topics(bootstrap, (Topic(topic, partitions=1),))
    producer = kafka.producer(bootstrap, "checkpoint-test")
    await producer.start()
    started: list[asyncio.Task] = []

    def checkpointer(**kwargs) -> Checkpointer:
        made = Checkpointer(app, service="trajectory", bootstrap_servers=bootstrap, producer=producer,
                            seed=SEED, topic=topic, **{"interval": 0.2, "heartbeat": 0.2, **kwargs})
        started.append(asyncio.create_task(made.run()))
        return made

    yield app, url, TestClient(api), tokens, topic, checkpointer, producer
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)
    await producer.stop()
    app.close()
    service.processing_log.close()


async def test_a_chain_recomputed_with_database_access_is_caught_by_its_signed_head(world, bootstrap, caplog):
    app, url, client, tokens, topic, checkpointer, _ = world
    trajectory_id = refer(app, referred_on=dt.date(2008, 2, 4))
    app.audit_index.add([(str(trajectory_id), str(trajectory_id))])  # as the relay notes it
    published = checkpointer()
    head = unwrap(app.recorder.select_events(trajectory_id)[-1])[1].decode()
    await eventually(lambda: (a := published.index.anchor(trajectory_id)) and a.head == head, timeout=30)

    # What is on the topic verifies with the public key alone, and holds ids and hashes only.
    records = [json.loads(r.value) for r in await read_all(bootstrap, topic)]
    bodies = [verified(r, {public_key(SEED)}) for r in records]
    assert bodies and all(bodies)
    assert [str(trajectory_id), 2, head] in [h for b in bodies for h in b["heads"]]
    assert set(bodies[0]) == {"v", "service", "store", "time", "from", "to", "previous", "log", "events",
                              "heads", "broken", "key"}
    assert "2008-02-04" not in json.dumps(records)

    recompute(app, url, trajectory_id, b"2008-02-04", b"2008-01-04")
    assert chain.verify(app.recorder, trajectory_id).intact  # the chain on its own no longer tells

    report = app.verify_chain(trajectory_id)
    assert not report.intact and report.broken_at == 2 and "signed checkpoint" in report.reason
    caplog.set_level(logging.INFO)
    response = client.get(f"/trajectories/{trajectory_id}/history", headers=auth(tokens))
    assert response.status_code == 503 and response.json()["type"].endswith("integrity-violation")
    assert "2008-01-04" not in response.text
    assert any(r.getMessage() == "integrity_violation" and r.stream == str(trajectory_id) for r in caplog.records)

    audited = client.get(f"/audit/trajectories/{trajectory_id}/events", headers=auth(tokens, "esf-auditor"))
    assert audited.status_code == 200
    chains = audited.json()["chains"]
    assert [(c["stream"], c["intact"], c["broken_at"]) for c in chains if not c["intact"]] == [
        (str(trajectory_id), False, 2)]
    assert audited.json()["events"] == []  # nothing of the tampered stream is served

    store = client.get("/audit/store", headers=auth(tokens, "esf-auditor")).json()
    assert store["intact"] is False
    assert store["heads"]["broken"] == [{"stream": str(trajectory_id), "version": 2,
                                        "reason": "differs from the head a signed checkpoint holds"}]
    assert store["log"]["intact"] is False  # the notification log's signed hash shows it too


async def test_a_stream_deleted_whole_is_missing_not_unknown(world):
    app, url, client, tokens, _, checkpointer, _ = world
    trajectory_id = refer(app)
    published = checkpointer()
    await eventually(lambda: published.index.anchor(trajectory_id), timeout=30)
    execute(url, f"DELETE FROM {table(url)} WHERE originator_id = %s", (stored_id(url, trajectory_id),))
    response = client.get(f"/trajectories/{trajectory_id}", headers=auth(tokens))
    assert response.status_code == 503, response.text
    assert response.json()["stream"] == str(trajectory_id)
    store = client.get("/audit/store", headers=auth(tokens, "esf-auditor")).json()
    assert store["heads"]["broken"][0]["reason"] == "missing" and store["log"]["intact"] is False


async def test_a_checkpoint_not_signed_with_the_key_is_not_believed(world, caplog):
    app, url, client, tokens, topic, checkpointer, producer = world
    trajectory_id = refer(app)
    published = checkpointer()
    anchor = await eventually(lambda: published.index.anchor(trajectory_id), timeout=30)
    # Someone who can write to Kafka, without the key, vouches for a chain of their own.
    caplog.set_level(logging.WARNING)
    forger = os.urandom(32)
    body = {**published.index.latest, "to": published.index.latest["to"] + 1, "key": public_key(forger),
            "heads": [[str(trajectory_id), anchor.version, "f" * 64]], "events": 1}
    await (await producer.send(topic, json.dumps(sign(forger, body)).encode(), key=b"trajectory"))
    # ... or re-signs one of the service's own with a changed head under the service's key name.
    stolen = {**body, "key": public_key(SEED)}
    await (await producer.send(topic, json.dumps({**sign(forger, stolen)}).encode(), key=b"trajectory"))
    await eventually(lambda: sum(r.getMessage() == "checkpoint_untrusted" for r in caplog.records) >= 2, timeout=30)
    assert published.index.anchor(trajectory_id) == anchor
    assert app.verify_chain(trajectory_id).intact


async def test_checkpoints_come_at_least_every_interval_and_a_restart_continues_the_signed_log(world, bootstrap):
    app, url, client, tokens, topic, checkpointer, _ = world
    trajectory_id = refer(app)
    first = checkpointer()
    await eventually(lambda: first.index.anchor(trajectory_id), timeout=30)
    await asyncio.sleep(1.0)  # nothing new: heartbeats
    records = [verified(json.loads(r.value), {public_key(SEED)}) for r in await read_all(bootstrap, topic)]
    assert len(records) >= 3
    times = [dt.datetime.fromisoformat(r["time"]) for r in records]
    assert max(b - a for a, b in zip(times, times[1:])) < dt.timedelta(seconds=3)  # 0.2 s, on a busy machine
    assert all(b["from"] == a["to"] and b["previous"] == a["log"] for a, b in zip(records, records[1:]))

    # Another process on the same store (or this one restarted) reads the signed heads back
    # from the topic and goes on from the last signed position.
    contract_id = ProviderContract.create_id("agens", "social-activation", "Diagnose")
    assert client.post(f"/contracts/{contract_id}/places", headers=auth(tokens, "region-contract-manager"),
                       json={"places": 31, "on": "2008-03-01", "reason": "more demand"}).status_code == 200
    second = checkpointer()
    head = unwrap(app.recorder.select_events(contract_id)[-1])[1].decode()
    await eventually(lambda: (a := second.index.anchor(contract_id)) and a.head == head, timeout=30)
    assert second.index.anchor(trajectory_id) == first.index.anchor(trajectory_id)
    assert checkpoints.verify_log(app.recorder, second.index)["intact"] is True


async def test_reference_data_is_audited_like_trajectories(world):
    """Tender, budgets, programmes, contracts and capacity: every stream listed for the
    auditor, chained and compared with its signed head."""
    app, url, client, tokens, _, checkpointer, _ = world
    refer(app)
    published = checkpointer()
    contract_id = ProviderContract.create_id("agens", "social-activation", "Diagnose")
    await eventually(lambda: published.index.anchor(contract_id), timeout=30)
    audited = client.get("/audit/reference-data/events", headers=auth(tokens, "esf-auditor"))
    assert audited.status_code == 200, audited.text
    body = audited.json()
    streams = {c["stream"]: c for c in body["chains"]}
    assert str(contract_id) in streams, streams
    assert [c for c in streams.values() if not (c["intact"] and c["anchored"])] == []
    kinds = {e["type"].split(".")[-2] for e in body["events"]}
    assert {"budget-set", "programme-volume-set", "contract-awarded"} <= kinds, kinds

    recompute(app, url, contract_id, b'"tariff_eur":750', b'"tariff_eur":950')
    body = client.get("/audit/reference-data/events", headers=auth(tokens, "esf-auditor")).json()
    broken = [c for c in body["chains"] if not c["intact"]]
    assert [c["stream"] for c in broken] == [str(contract_id)]
    assert all(e["data"].get("tariff_eur") != 950 for e in body["events"])
    assert client.get(f"/contracts/{contract_id}", headers=auth(tokens, "region-staff")).status_code == 503


async def test_a_running_service_publishes_its_checkpoints_to_the_audit_topic(bootstrap, tmp_path, monkeypatch):
    """As `tweespoor run` starts it: the checkpointer is one of the service's workers."""
    from contracts.runtime import Settings
    from trajectory.main import build

    assert CHECKPOINTS in {t.name for t in TOPICS}
    monkeypatch.setenv("TWEESPOOR_CHECKPOINT_SECONDS", "0.3")
    monkeypatch.setenv("TRAJECTORY_CHECKPOINT_KEY", base64.b64encode(SEED).decode())
    path, _ = write_credentials(tmp_path / "config")
    service = build(Settings("trajectory", bootstrap, f"sqlite:///{tmp_path}/trajectory.db", "127.0.0.1", 0),
                    {"TWEESPOOR_CREDENTIALS_FILE": str(path)})
    service.consumes_from, service.publishes_to = (), None  # only its own store here: no shared topics
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        register = uuid.uuid5(uuid.UUID("3d0e4a8b-6f21-4c9a-b1e7-58c2d9f0a614"), "register")
        await eventually(lambda: running.done() or (getattr(service.app, "anchors", None) is not None
                                                    and service.app.anchors.anchor(register)), timeout=60)
        assert not running.done()
        assert service.app.anchors.latest["key"] == public_key(SEED)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 30)
