"""A service run twice on one PostgreSQL store, over the real broker: only the replica
holding the store's lease relays, so every event reaches the topic once, whichever
replica recorded it; when that replica stops, the other takes over and relays what
follows. A standby reads the signed checkpoints but publishes none (issue 17, item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter

import pytest
from fastapi import FastAPI

from contracts.runtime import Service, Settings
from contracts.service import store_env
from contracts.web.health import health
from tests.contracts.test_relay_wakeup import Referral, Referring, translate
from tests.support.kafka_tools import eventually, fresh_topics, read_all

pytestmark = [pytest.mark.kafka]


@pytest.mark.postgres
async def test_a_service_in_two_replicas_relays_each_event_once_and_the_standby_takes_over(
        bootstrap, postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("TWEESPOOR_LEASE_SECONDS", "0.2")
    monkeypatch.setenv("TWEESPOOR_DATA_DIR", str(tmp_path))  # where the checkpoint key is made
    database = f"t_replicas_{uuid.uuid4().hex[:10]}"
    postgres.create_database(database)
    url = postgres.url(database)
    topic = (await fresh_topics(bootstrap, "referring"))["referring"]
    service = f"referring{uuid.uuid4().hex[:6]}"

    def replica() -> Service:
        return Service(settings=Settings(service, bootstrap, url, "127.0.0.1", 0),
                       app=Referring(store_env(url)), api=FastAPI(), publishes_to=topic, translate=translate)

    first, second = replica(), replica()
    stops = {id(first): asyncio.Event(), id(second): asyncio.Event()}
    tasks = {id(first): asyncio.create_task(first.run(stops[id(first)]))}
    try:
        await eventually(lambda: first.lease is not None and first.lease.held, timeout=60)
        tasks[id(second)] = asyncio.create_task(second.run(stops[id(second)]))
        await eventually(lambda: second.lease is not None, timeout=60)
        await asyncio.sleep(1.0)
        assert first.lease.held and not second.lease.held  # type: ignore[union-attr]
        # Both ready; /health says which one does the store's once-only work.
        assert health(first.api) == {"status": "ok", "lease": "held"}
        assert health(second.api) == {"status": "ok", "lease": "standby"}

        # Both replicas record (as both serve HTTP); the one holding the lease relays it all.
        for app in (first.app, second.app):
            for _ in range(10):
                app.save(Referral())  # type: ignore[attr-defined]
        await eventually(lambda: _count(bootstrap, topic, 20), timeout=30)
        await asyncio.sleep(2.0)  # and nothing more comes: the standby does not relay too
        once = await _origins(bootstrap, topic)
        assert len(once) == 20 and set(once.values()) == {1}, once

        # The holder stops; the standby takes the lease and relays what is recorded next.
        stops[id(first)].set()
        await asyncio.wait_for(tasks.pop(id(first)), 30)
        await eventually(lambda: second.lease.held, timeout=5)  # type: ignore[union-attr]
        for _ in range(10):
            second.app.save(Referral())  # type: ignore[attr-defined]
        await eventually(lambda: _count(bootstrap, topic, 30), timeout=30)
        await asyncio.sleep(1.0)
        after = await _origins(bootstrap, topic)
        assert len(after) == 30 and set(after.values()) == {1}, after
    finally:
        for key, task in tasks.items():
            stops[key].set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)


async def _origins(bootstrap: str, topic: str) -> Counter[str]:
    """How often each stored event reached the topic, by the CloudEvent's id."""
    return Counter(dict(r.headers)["ce_id"].decode() for r in await read_all(bootstrap, topic))


async def _count(bootstrap: str, topic: str, expected: int) -> bool:
    return len(await read_all(bootstrap, topic)) >= expected


async def test_a_standby_follows_the_checkpoints_and_publishes_none_until_it_holds_the_lease(bootstrap, tmp_path):
    from aiokafka import AIOKafkaProducer

    from contracts.checkpoints import Checkpointer

    topic = (await fresh_topics(bootstrap, "checkpoints"))["checkpoints"]
    app = Referring(store_env(f"sqlite:///{tmp_path}/referring.db"))
    app.save(Referral())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    holding = False
    checkpointer = Checkpointer(app, service="referring", bootstrap_servers=bootstrap, producer=producer,
                                seed=b"\x01" * 32, topic=topic, interval=0.1, publish_when=lambda: holding)
    running = asyncio.create_task(checkpointer.run())
    try:
        await eventually(lambda: checkpointer.index.caught_up, timeout=30)
        await asyncio.sleep(1.0)
        assert await read_all(bootstrap, topic) == []  # a standby: it reads, the holder signs
        holding = True
        await eventually(lambda: checkpointer.index.latest is not None, timeout=30)
        assert len(await read_all(bootstrap, topic)) >= 1
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await producer.stop()
        app.close()
