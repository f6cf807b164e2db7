"""Small helpers for tests that look at what really is on a topic."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer

from contracts.kafka import ensure_topics, read_from_start
from contracts.topics import Topic, dead_letter_topic


async def read_all(bootstrap: str, topic: str, timeout: float = 10.0) -> list[Any]:
    """Every record on every partition of `topic`, without joining a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        ends = await read_from_start(consumer, [topic])
        partitions = list(ends)
        records: list[Any] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def fresh_topics(bootstrap: str, *roles: str, groups: tuple[str, ...] = ()) -> dict[str, str]:
    """Topics no other test uses: role -> name; plus a dead-letter topic per group."""
    suffix = uuid.uuid4().hex[:10]
    names = {role: f"test.{suffix}.{role}" for role in roles}
    await ensure_topics(bootstrap, tuple(Topic(n) for n in names.values())
                        + tuple(Topic(dead_letter_topic(g), partitions=1) for g in groups))
    return names


async def eventually(check, timeout: float = 20.0, interval: float = 0.1):
    """Polls `check` (sync or async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode()
    return None
