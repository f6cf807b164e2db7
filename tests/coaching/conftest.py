"""Coaching wired to the real broker and a real store (SQLite or PostgreSQL): fresh topics,
a coaching application (or several on one store), its inbox and its outbox relay."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from contracts import kafka
from contracts.envelope import CloudEvent, from_record, to_record
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.service import store_env
from coaching.application import CoachingApplication
from coaching.integration import integration_events
from services.coaching.tests.support import Clock
from tests.support.kafka_tools import eventually, fresh_topics, read_all

STARTS = dt.date(2027, 1, 4)


@pytest.fixture
async def producer(bootstrap):
    producer = kafka.producer(bootstrap, "test-coaching")
    await producer.start()
    yield producer
    await producer.stop()


class World:
    """Fresh topics and one coaching store; `app()` opens another instance on that store,
    as a second process would."""

    def __init__(self, bootstrap, producer, topics, group, url, clock) -> None:
        self.bootstrap, self.producer, self.topics = bootstrap, producer, topics
        self.group, self.url, self.clock = group, url, clock
        self.apps: list[CoachingApplication] = []
        self.coaching = self.app()

    def app(self) -> CoachingApplication:
        app = CoachingApplication(store_env(self.url), clock=self.clock)
        app.group = self.group
        self.apps.append(app)
        return app

    def relay(self, app: CoachingApplication | None = None) -> OutboxRelay:
        return OutboxRelay(app=app or self.coaching, translate=integration_events,
                           producer=self.producer, topic=self.topics["coaching"],
                           system="tweespoor-coaching")

    def inbox(self) -> Inbox:
        return Inbox(bootstrap_servers=self.bootstrap, topics=[self.topics["trajectory"]],
                     target=self.coaching, producer=self.producer)

    async def publish(self, *events: CloudEvent) -> None:
        """Puts events on the trajectory topic as the trajectory service's relay would."""
        for event in events:
            key, value, headers = to_record(event)
            await self.producer.send_and_wait(self.topics["trajectory"], value, key=key,
                                              headers=headers)

    async def published(self) -> list[CloudEvent]:
        """What is on coaching's topic, decoded."""
        return [from_record(r.key, r.value, list(r.headers))
                for r in await read_all(self.bootstrap, self.topics["coaching"])]

    def close(self) -> None:
        for app in self.apps:
            app.close()


@pytest.fixture
async def world(bootstrap, producer, database_url):
    group = f"coaching-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "trajectory", "coaching", groups=(group,))
    world = World(bootstrap, producer, topics, group, database_url("coaching"), Clock(STARTS))
    yield world
    world.close()


async def run_inbox_until(inbox: Inbox, condition, timeout: float = 30.0) -> None:
    task = asyncio.create_task(inbox.run())
    try:
        await eventually(lambda: task.done() or condition(), timeout=timeout)
        if task.done():
            task.result()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
