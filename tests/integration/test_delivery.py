"""The delivery contract on the real broker and real stores (SQLite and PostgreSQL):
the outbox relay, the inbox's tracking and receipts, dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from contracts import kafka
from contracts.envelope import from_record
from contracts.events import ClientReferred, TrajectoryOpened
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.service import Outcome, store_env
from contracts.topics import dead_letter_topic
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person
from tests.support.kafka_tools import eventually, fresh_topics, header, read_all
from trajectory.application import TrajectoryApplication, integration_events as trajectory_events

pytestmark = [pytest.mark.kafka]

BSN = "111222333"  # made up; passes the 11-test


def referral(intake: IntakeApplication) -> dict:
    status, body = intake.refer(ReferralInput(
        person=Person(BSN, "Test Persoon", dt.date(1980, 1, 1)), municipality="alkmaar",
        programme="focus2move", benefit="bijstand", uwv_registered_on=None,
        distance_to_labour_market="large", referred_on=dt.date(2026, 11, 2), caseworker_id="cw-1"))
    assert status == 201 and body["status"] == "referred"
    return body


def new_intake(url: str) -> IntakeApplication:
    return IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"test"))


@pytest.fixture
async def producer(bootstrap):
    producer = kafka.producer(bootstrap, "test")
    await producer.start()
    yield producer
    await producer.stop()


@dataclass
class World:
    """An intake and a trajectory service on fresh stores and fresh topics."""

    topics: dict[str, str]
    intake: IntakeApplication
    trajectory: TrajectoryApplication
    group: str
    bootstrap: str
    producer: Any

    def relay(self, app, translate, topic, **kwargs) -> OutboxRelay:
        return OutboxRelay(app=app, translate=translate, producer=self.producer, topic=topic,
                           system=f"tweespoor-{app.name}", **kwargs)

    def intake_relay(self, **kwargs) -> OutboxRelay:
        return self.relay(self.intake, self.intake.integration_events, self.topics["intake"], **kwargs)

    def trajectory_relay(self, **kwargs) -> OutboxRelay:
        return self.relay(self.trajectory, trajectory_events, self.topics["trajectory"], **kwargs)

    def inbox(self) -> Inbox:
        return Inbox(bootstrap_servers=self.bootstrap, topics=[self.topics["intake"]],
                     target=self.trajectory, producer=self.producer)


@pytest.fixture
async def world(bootstrap, database_url, producer):
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "intake", "trajectory", groups=(group,))
    trajectory = TrajectoryApplication(store_env(database_url("trajectory")))
    trajectory.group = group
    w = World(topics, new_intake(database_url("intake")), trajectory, group, bootstrap, producer)
    yield w
    w.intake.close()
    trajectory.close()


async def run_inbox_until(inbox: Inbox, condition, timeout: float = 90.0):
    task = asyncio.create_task(inbox.run())
    try:
        async def finished():
            if task.done():
                return True
            result = condition()
            return await result if asyncio.iscoroutine(result) else result

        await eventually(finished, timeout=timeout)
        if task.done():
            task.result()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def opened(world, trajectory_id: str) -> bool:
    try:
        world.trajectory.trajectory(uuid.UUID(trajectory_id))
    except Exception:
        return False
    return True


async def test_a_referral_travels_from_intake_through_kafka_into_a_trajectory(world, bootstrap):
    created = referral(world.intake)
    assert await world.intake_relay().relay_once() >= 1

    [record] = await read_all(bootstrap, world.topics["intake"])
    event = from_record(record.key, record.value, list(record.headers))
    assert isinstance(event.data, ClientReferred)
    assert record.key == created["trajectory_id"].encode()
    assert BSN.encode() not in record.value + b"".join(v for _, v in record.headers)

    await run_inbox_until(world.inbox(), lambda: opened(world, created["trajectory_id"]))
    assert world.trajectory.trajectory(uuid.UUID(created["trajectory_id"]))["trajectory_id"] == created["trajectory_id"]

    assert await world.trajectory_relay().relay_once() >= 1
    published = [from_record(r.key, r.value, list(r.headers))
                 for r in await read_all(bootstrap, world.topics["trajectory"])]
    assert [type(e.data) for e in published] == [TrajectoryOpened]
    assert str(published[0].data.trajectory_id) == created["trajectory_id"]


async def test_the_same_record_redelivered_has_no_second_effect(world, bootstrap):
    created = referral(world.intake)
    await world.intake_relay().relay_once()
    [record] = await read_all(bootstrap, world.topics["intake"])
    inbox = world.inbox()

    assert await inbox.handle(record) is Outcome.APPLIED
    assert await inbox.handle(record) is Outcome.SEEN_OFFSET  # recognised by its tracking record
    state = world.trajectory.trajectory(uuid.UUID(created["trajectory_id"]))
    assert state["version"] == 1
    assert world.trajectory.position(record.topic, record.partition) == record.offset

    # The group never committed (as after a crash between the store commit and the Kafka
    # commit): a new member resumes after the store's tracking, and applies nothing twice.
    fresh = world.inbox()
    task = asyncio.create_task(fresh.run())
    await eventually(fresh.assigned.is_set)
    await asyncio.sleep(1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert fresh.applied == 0
    assert world.trajectory.trajectory(uuid.UUID(created["trajectory_id"]))["version"] == 1


async def test_a_relay_killed_between_store_write_and_publish_publishes_once_after_restart(
    world, bootstrap, database_url, store_kind
):
    created = referral(world.intake)  # the store write; the relay dies before it publishes
    assert await read_all(bootstrap, world.topics["intake"]) == []

    assert await world.intake_relay().relay_once() > 0  # restarted
    assert await world.intake_relay().relay_once() == 0  # and again: its position holds
    records = await read_all(bootstrap, world.topics["intake"])
    assert len(records) == 1

    await run_inbox_until(world.inbox(), lambda: opened(world, created["trajectory_id"]))
    await world.trajectory_relay().relay_once()
    downstream = await read_all(bootstrap, world.topics["trajectory"])
    assert len(downstream) == 1


async def test_a_relay_killed_after_publishing_and_before_recording_its_position(world, bootstrap):
    """The one window where a relay publishes twice: the consumer's receipts absorb it."""
    created = referral(world.intake)

    async def killed(position: int) -> None:
        raise SystemExit("relay killed after publish")

    with pytest.raises(SystemExit):
        await world.intake_relay(after_publish=killed).relay_once()
    assert await world.intake_relay().relay_once() > 0  # restarted: publishes again

    records = await read_all(bootstrap, world.topics["intake"])
    assert len(records) == 2
    assert header(records[0], "ce_id") == header(records[1], "ce_id")

    inbox = world.inbox()
    outcomes = sorted([(await inbox.handle(r)).value for r in records])
    assert outcomes == [Outcome.APPLIED.value, Outcome.SEEN_EVENT.value]
    await world.trajectory_relay().relay_once()
    downstream = await read_all(bootstrap, world.topics["trajectory"])
    assert [header(r, "ce_subject") for r in downstream] == [created["trajectory_id"]]


async def test_a_relay_process_killed_with_sigkill_after_publishing(world, bootstrap, tmp_path,
                                                                     store_kind, database_url):
    """The same window, with a real SIGKILL of a separate relay process."""
    url = database_url("intake_killed")
    intake = new_intake(url)
    created = referral(intake)
    intake.close()
    script = (
        "import asyncio, os, signal, sys\n"
        "from contracts import kafka\n"
        "from contracts.outbox import OutboxRelay\n"
        "from contracts.service import store_env\n"
        "from intake.application import IntakeApplication, IntakeConfig\n"
        "async def main():\n"
        "    app = IntakeApplication(store_env(sys.argv[1]), config=IntakeConfig(pseudonym_key=b'test'))\n"
        "    producer = kafka.producer(sys.argv[2], 'doomed-relay')\n"
        "    await producer.start()\n"
        "    async def die(position):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    await OutboxRelay(app=app, translate=app.integration_events, producer=producer,\n"
        "                      topic=sys.argv[3], system='tweespoor-intake', after_publish=die).relay_once()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script, url, bootstrap, world.topics["intake"]],
                          timeout=60, capture_output=True, env=os.environ.copy())
    assert done.returncode == -9, done.stderr.decode()[-2000:]

    restarted = new_intake(url)
    relay = world.relay(restarted, restarted.integration_events, world.topics["intake"])
    assert await relay.relay_once() > 0
    records = await read_all(bootstrap, world.topics["intake"])
    assert len(records) == 2 and header(records[0], "ce_id") == header(records[1], "ce_id")

    await run_inbox_until(world.inbox(), lambda: opened(world, created["trajectory_id"]))
    await asyncio.sleep(0.5)
    await world.trajectory_relay().relay_once()
    downstream = await read_all(bootstrap, world.topics["trajectory"])
    assert [header(r, "ce_subject") for r in downstream] == [created["trajectory_id"]]
    restarted.close()


async def test_poison_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(world, bootstrap, producer):
    topic = world.topics["intake"]
    await producer.send_and_wait(topic, b"\x00not json", key=b"k",
                                 headers=[("ce_type", b"nl.reintegratie.referral.client-referred.v1"),
                                          ("x-trace", b"abc")])
    unknown = [("content-type", b"application/json"), ("ce_specversion", b"1.0"),
               ("ce_id", b"1"), ("ce_source", b"urn:nld:oin:1:systeem:x"),
               ("ce_type", b"nl.reintegratie.referral.teleported.v1"), ("ce_subject", b"k"),
               ("ce_time", b"2026-11-23T10:00:00Z")]
    await producer.send_and_wait(topic, b"{}", key=b"k", headers=unknown)
    # A version of a known event this consumer was not built for.
    newer = [(k, b"nl.reintegratie.referral.client-referred.v9" if k == "ce_type" else v) for k, v in unknown]
    await producer.send_and_wait(topic, b"{}", key=b"k", headers=newer)
    created = referral(world.intake)
    await world.intake_relay().relay_once()

    async def all_dead_lettered():
        found = await read_all(bootstrap, dead_letter_topic(world.group))
        return found if len(found) == 3 else None

    async def done():
        # The poison and the referral may sit on different partitions, read in any order:
        # the inbox runs until both the referral and every dead letter are through.
        return opened(world, created["trajectory_id"]) and await all_dead_lettered()

    await run_inbox_until(world.inbox(), done)
    dead = await all_dead_lettered()
    assert dead is not None and len(dead) == 3
    assert header(dead[0], "x-trace") == "abc"  # the original headers travel along
    assert "invalid CloudEvent attributes" in header(dead[0], "dlq_reason")
    assert "unknown event type" in header(dead[1], "dlq_reason")
    assert "unknown event type" in header(dead[2], "dlq_reason")
    assert header(dead[2], "ce_type") == "nl.reintegratie.referral.client-referred.v9"
    assert header(dead[0], "dlq_topic") == topic
    assert dead[0].value == b"\x00not json"
