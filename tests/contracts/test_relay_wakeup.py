"""The outbox relay is woken by its own process's commits and polls slowly when idle.

An event this process records is published at once, without waiting for the idle poll;
one that another process records in the same store is still found by that poll. No
broker is needed: the producer here only collects what it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, event

from contracts.events import ClientReferred
from contracts.outbox import OutboxRelay
from contracts.service import ServiceApplication, store_env
from contracts.wakeup import Wakeup

TOPIC = "tweespoor.intake.events.v1"


class Referral(Aggregate):
    @event("Made")
    def __init__(self) -> None:
        pass


class Referring(ServiceApplication):
    group = "referring"


def translate(domain_event: Any) -> list[tuple[str, ClientReferred]]:
    return [("alkmaar", ClientReferred(
        trajectory_id=domain_event.originator_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
        municipality="alkmaar", programme="focus2move", benefit="bijstand", referred_on=dt.date(2007, 3, 1)))]


class CollectingProducer:
    """Acknowledges every record at once and keeps its key."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []

    async def send(self, topic: str, value: bytes, *, key: bytes, headers: Any) -> asyncio.Future[None]:
        self.keys.append(key)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture
def store(tmp_path):
    url = f"sqlite:///{tmp_path}/referring.db"
    apps = [Referring(store_env(url)), Referring(store_env(url))]
    yield apps
    for app in apps:
        app.close()


async def until(condition: Any, timeout: float) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "not within the timeout"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def relaying(relay: OutboxRelay) -> AsyncIterator[None]:
    running = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_an_event_this_process_records_is_relayed_without_waiting_for_the_poll(store):
    app, _ = store
    producer = CollectingProducer()
    relay = OutboxRelay(app=app, translate=translate, producer=producer, topic=TOPIC,  # type: ignore[arg-type]
                        system="tweespoor-intake", idle_seconds=30)
    async with relaying(relay):
        await asyncio.sleep(0.2)  # the relay found nothing and waits
        referral = Referral()
        await asyncio.to_thread(app.save, referral)  # from a worker thread, as the API does
        took = await until(lambda: producer.keys == [str(referral.id).encode()], timeout=5)
        assert took < 1.0
        await until(lambda: relay.position() == app.recorder.max_notification_id(), timeout=5)


async def test_an_event_another_process_records_is_found_by_the_idle_poll(store):
    app, other = store
    producer = CollectingProducer()
    relay = OutboxRelay(app=app, translate=translate, producer=producer, topic=TOPIC,  # type: ignore[arg-type]
                        system="tweespoor-intake", idle_seconds=0.3)
    async with relaying(relay):
        await asyncio.sleep(0.1)
        referral = Referral()
        await asyncio.to_thread(other.save, referral)  # no wake-up reaches this relay
        await until(lambda: producer.keys == [str(referral.id).encode()], timeout=5)


async def test_a_relay_without_a_wake_up_polls_as_often_as_before(store):
    app, _ = store
    relay = OutboxRelay(app=SimpleNamespace(), translate=translate, producer=CollectingProducer(),  # type: ignore[arg-type]
                        topic=TOPIC, system="tweespoor-intake")
    assert relay.wakeup is None and relay.idle_seconds == 0.05
    woken = OutboxRelay(app=app, translate=translate, producer=CollectingProducer(),  # type: ignore[arg-type]
                        topic=TOPIC, system="tweespoor-intake")
    assert woken.wakeup is app.recorded and woken.idle_seconds == 1.0


async def test_a_ring_while_the_follower_works_is_kept_for_its_next_wait():
    wakeup = Wakeup()
    with wakeup.waiter() as waiter:
        assert not await waiter.wait(0.01)
        await asyncio.to_thread(wakeup.ring)  # rung while "working", from another thread
        await asyncio.sleep(0)
        assert await waiter.wait(5)
        assert not await waiter.wait(0.01)  # once: the ring was used up
    wakeup.ring()  # a closed waiter is no longer rung
    assert not wakeup._waiters
