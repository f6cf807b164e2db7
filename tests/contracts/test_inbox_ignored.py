"""The inbox passes over event types its target does not consume without asking the store,
and commits to the group when things quiet down rather than after every record.

What the target would answer (ignored) is answered without a worker thread and a query
of its tracking; a record of such a type that cannot be decoded still goes to the dead
letters, and a consumed one is applied as before. Those need no broker: records and the
dead-letter producer are stand-ins. The commits are checked on the real broker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import kafka
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import ClientReferred, TrajectoryOpened
from contracts.inbox import Inbox
from contracts.service import Outcome
from tests.support.kafka_tools import eventually, fresh_topics

TOPIC = "tweespoor.intake.events.v1"


class Target:
    group = "following"
    consumes = (ClientReferred,)

    def __init__(self) -> None:
        self.applied: list[int] = []

    def position(self, topic: str, partition: int) -> int | None:
        return None

    def apply(self, cloud_event: Any, topic: str, partition: int, offset: int) -> Outcome:
        self.applied.append(offset)
        return Outcome.APPLIED

    def incarnation(self, topic: str, topic_id: str) -> int:
        return 1


class DeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, topic: str, value: Any, *, key: Any, headers: Any) -> asyncio.Future[None]:
        self.reasons.append(dict(headers)["dlq_reason"].decode())
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sent.set_result(None)
        return sent


def record(data: Any, offset: int, *, value: bytes | None = None) -> SimpleNamespace:
    cloud_event = envelope(data, source=source_urn("alkmaar", "tweespoor-intake"), origin=f"o/{offset}",
                           sequence=1, time=dt.datetime(2007, 3, 1, 9, tzinfo=dt.UTC))
    key, encoded, headers = to_record(cloud_event)
    return SimpleNamespace(key=key, value=encoded if value is None else value, headers=headers,
                           topic=TOPIC, partition=0, offset=offset)


def referred() -> ClientReferred:
    return ClientReferred(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                          municipality="alkmaar", programme="focus2move", benefit="bijstand",
                          referred_on=dt.date(2007, 3, 1))


def opened() -> TrajectoryOpened:
    return TrajectoryOpened(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                            municipality="alkmaar", programme="focus2move", opened_on=dt.date(2007, 3, 2))


def inbox(target: Target, dead: DeadLetters) -> Inbox:
    inbox = Inbox(bootstrap_servers="unused:9092", topics=[TOPIC], target=target, producer=dead)  # type: ignore[arg-type]
    inbox.letter_limit = 1_048_588  # the broker's default, without asking a broker
    return inbox


async def test_a_type_the_target_does_not_consume_is_ignored_without_the_store():
    target, dead = Target(), DeadLetters()
    assert await inbox(target, dead).handle(record(opened(), 7)) is Outcome.IGNORED
    assert target.applied == [] and dead.reasons == []


async def test_a_consumed_type_is_applied():
    target, dead = Target(), DeadLetters()
    following = inbox(target, dead)
    assert await following.handle(record(referred(), 8)) is Outcome.APPLIED
    assert target.applied == [8] and following.applied == 1


async def test_an_undecodable_record_of_an_ignored_type_still_goes_to_the_dead_letters():
    target, dead = Target(), DeadLetters()
    assert await inbox(target, dead).handle(record(opened(), 9, value=b"{not json")) is None
    assert target.applied == [] and len(dead.reasons) == 1
    assert dead.reasons[0].startswith("invalid nl.reintegratie.trajectory.opened")


@pytest.mark.kafka
async def test_what_was_processed_is_committed_once_nothing_more_comes(bootstrap):
    """Commits wait while records keep coming; once none came, everything is committed,
    ignored records included, so that a restart need not read them again."""
    group = f"following-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "intake", groups=(group,))
    producer = kafka.producer(bootstrap, "test")
    await producer.start()
    try:
        for data in (referred(), opened(), opened()):
            key, value, headers = to_record(envelope(
                data, source=source_urn("alkmaar", "tweespoor-intake"), origin=str(uuid.uuid4()),
                sequence=1, time=dt.datetime(2007, 3, 1, 9, tzinfo=dt.UTC)))
            await producer.send_and_wait(topics["intake"], value, key=key, headers=headers)
        target = Target()
        target.group = group
        following = Inbox(bootstrap_servers=bootstrap, topics=[topics["intake"]], target=target,  # type: ignore[arg-type]
                          producer=producer, commit_seconds=3600)
        running = asyncio.create_task(following.run())
        try:
            await eventually(lambda: len(target.applied) == 1)
            ends = await end_offsets(bootstrap, topics["intake"])
            await eventually(lambda: committed(bootstrap, group, ends), timeout=10)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await kafka.read_from_start(consumer, [topic])
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, ends: dict[TopicPartition, int]) -> bool:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return all([(await consumer.committed(tp) or 0) == end for tp, end in ends.items()])
    finally:
        await consumer.stop()
