"""A position belongs to one incarnation of a topic (issue 14, item 1), on the real broker
and real stores (SQLite and PostgreSQL): a topic deleted and created again is read from
its start, whether the consumer ran through it or started afterwards, and the relay
publishes its log onto the new topic again; a store of the previous release, whose
positions carry no incarnation, resumes where it was."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts import kafka
from contracts.envelope import from_record
from contracts.incarnation import topic_ids
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.service import store_env, tracking_name
from contracts.topics import Topic
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person
from tests.support.kafka_tools import eventually, fresh_topics, read_all
from tests.support.people import made_up_bsns
from trajectory.application import TrajectoryApplication

pytestmark = [pytest.mark.kafka]


@dataclass
class World:
    """An intake relaying to a fresh topic that a trajectory service consumes; the topic
    is deleted and made again by the tests."""

    topic: str
    intake: IntakeApplication
    trajectory: TrajectoryApplication
    relay: OutboxRelay
    group: str
    producer: Any
    bootstrap: str
    people: Iterator[str]

    def refer(self) -> uuid.UUID:
        status, body = self.intake.refer(ReferralInput(
            person=Person(next(self.people), "Test Persoon", dt.date(1980, 1, 1)), municipality="alkmaar",
            programme="focus2move", benefit="bijstand", uwv_registered_on=None,
            distance_to_labour_market="large", referred_on=dt.date(2008, 2, 1), caseworker_id="cw-1"))
        assert status == 201
        return uuid.UUID(body["trajectory_id"])

    def inbox(self) -> Inbox:
        return Inbox(bootstrap_servers=self.bootstrap, topics=[self.topic], target=self.trajectory,
                     producer=self.producer, incarnation_seconds=0.2)


@pytest.fixture
async def world(bootstrap, database_url):
    producer = kafka.producer(bootstrap, "test-incarnation")
    await producer.start()
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "intake", groups=(group,))
    intake = IntakeApplication(store_env(database_url("intake")), config=IntakeConfig(pseudonym_key=b"test"))
    trajectory = TrajectoryApplication(store_env(database_url("trajectory")))
    trajectory.group = group
    relay = OutboxRelay(app=intake, translate=intake.integration_events, producer=producer,
                        topic=topics["intake"], system="tweespoor-intake")
    relay.incarnation_seconds = 0.2
    w = World(topics["intake"], intake, trajectory, relay, group, producer, bootstrap,
              iter(made_up_bsns(20, random.Random(14))))
    yield w
    intake.close()
    trajectory.close()
    await producer.stop()


def opened(world, ids) -> bool:
    for trajectory_id in ids:
        try:
            world.trajectory.trajectory(trajectory_id)
        except Exception:
            return False
    return True


def opened_events(world) -> int:
    """TrajectoryOpened events in the trajectory store: one per referral, never two."""
    return sum(n.topic.endswith("Opened") and "Trajectory" in n.topic
               for n in world.trajectory.recorder.select_notifications(1, 10_000))


async def until_opened(world, ids, inbox: asyncio.Task) -> None:
    """Waits until every trajectory is open, then stops the inbox."""
    try:
        await eventually(lambda: opened(world, ids), timeout=60)
    finally:
        inbox.cancel()
        await asyncio.gather(inbox, return_exceptions=True)


async def relay_all(world) -> None:
    while await world.relay.relay_once() or world.relay.position() < world.intake.recorder.max_notification_id():
        await asyncio.sleep(0.05)


async def recreate(bootstrap: str, topic: str) -> None:
    """Deletes the topic and creates it again, empty, as a restored cluster has it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while topic in await admin.list_topics():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await asyncio.sleep(1)
    await kafka.ensure_topics(bootstrap, (Topic(topic),))


@pytest.mark.parametrize("consumer", ["running", "restarted"])
async def test_a_topic_created_again_is_read_from_its_start(world, bootstrap, consumer):
    first = [world.refer() for _ in range(6)]
    await relay_all(world)
    inbox = world.inbox()
    task = asyncio.create_task(inbox.run())
    await eventually(lambda: opened(world, first), timeout=60)
    old_id = (await topic_ids(world.producer.client, [world.topic]))[world.topic]
    if consumer == "restarted":
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    await recreate(bootstrap, world.topic)
    then = [world.refer() for _ in range(3)]
    await asyncio.sleep(0.3)
    await relay_all(world)
    if consumer == "restarted":
        task = asyncio.create_task(world.inbox().run())
    await until_opened(world, first + then, task)
    assert opened_events(world) == len(first + then)
    # The relay published its whole log onto the new topic: the audit trail is whole again.
    assert (await topic_ids(world.producer.client, [world.topic]))[world.topic] != old_id
    assert len(await read_all(bootstrap, world.topic)) == len(first + then)


async def test_a_store_of_the_previous_release_resumes_where_it_was(world, bootstrap):
    """Positions written before incarnations were tracked keep their plain names: the
    first incarnation met adopts them, and nothing is read again from the start."""
    first = [world.refer() for _ in range(4)]
    await relay_all(world)
    positions = {}
    for partition in range(3):  # as the previous release left them: plain names, no markers
        records = [r for r in await read_all(bootstrap, world.topic) if r.partition == partition]
        if records:
            positions[partition] = records[-1].offset
    for partition, offset in positions.items():
        for record in [r for r in await read_all(bootstrap, world.topic) if r.partition == partition]:
            world.trajectory.apply(from_record(record.key, record.value, list(record.headers)), world.topic,
                                   partition, record.offset)  # as the previous release did
        assert world.trajectory.position(world.topic, partition) == offset
    assert world.trajectory.recorder.max_tracking_id(f"incarnations:{world.group}:{world.topic}") is None

    then = [world.refer() for _ in range(3)]
    await relay_all(world)
    await until_opened(world, first + then, asyncio.create_task(world.inbox().run()))
    # The plain names were adopted as the first incarnation's: no second one was begun,
    # and every position moved on from where the previous release had left it.
    assert world.trajectory.recorder.max_tracking_id(f"incarnations:{world.group}:{world.topic}") == 1
    for record in await read_all(bootstrap, world.topic):
        assert world.trajectory.position(world.topic, record.partition) >= record.offset
        assert world.trajectory.position(f"{world.topic}#2", record.partition) is None
    assert opened_events(world) == len(first + then)
