"""Kafka as the benchmarks use it: topics of their own, the services' producer settings,
and a plain reader that mirrors how the reporting rebuild reads."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts import kafka
from contracts.topics import Topic

IN_FLIGHT = 20_000  # sends awaited in windows: enough to keep batches full, bounded memory

Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def run_topics(*names: str) -> dict[str, str]:
    """Fresh topic names for this run, so an external broker's other topics are untouched."""
    run = uuid.uuid4().hex[:8]
    return {name: f"tweespoor.bench.{run}.{name}.v1" for name in names}


async def create_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Three partitions and unlimited retention, exactly like the event topics."""
    await kafka.ensure_topics(bootstrap, tuple(Topic(name) for name in names))


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    admin = kafka.admin(bootstrap, "tweespoor-bench")
    await admin.start()
    try:
        await admin.delete_topics(list(names))
    finally:
        await admin.close()


def raw_producer(bootstrap: str) -> AIOKafkaProducer:
    """The services' durability (idempotent, acks=all, linger 5 ms) with batches sized for
    throughput: aiokafka's 16 KiB default holds some 30 of these records per request."""
    return kafka.producer(bootstrap, "tweespoor-bench", max_batch_size=1 << 20)


async def produce(bootstrap: str, records: Iterable[Record], *, services: bool = False) -> tuple[int, float]:
    """Sends every record with the raw producer, or the services' own (`contracts.kafka`);
    returns how many and the seconds until the last one was acknowledged."""
    producer = kafka.producer(bootstrap, "tweespoor-bench") if services else raw_producer(bootstrap)
    await producer.start()
    started, sent = time.perf_counter(), 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for topic, key, value, headers in records:
            pending.append(await producer.send(topic, value, key=key, headers=headers))
            sent += 1
            if len(pending) >= IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return sent, time.perf_counter() - started
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Pass:
    """One read of topics: how many records, wall-clock and CPU seconds (of this process,
    all threads: on a shared machine CPU time drifts much less than wall-clock time)."""

    records: int
    seconds: float
    cpu_seconds: float


async def consume(bootstrap: str, topics: Iterable[str], on_record: Callable[[Any], None] | None = None,
                  ) -> Pass:
    """Reads the topics from offset 0 to their end as reporting's rebuild does (assigned
    partitions, no group, read_committed, the same fetch size and batch size), calling
    `on_record` on each."""
    from reporting.rebuild import BATCH

    consumer = kafka.reader(bootstrap, max_partition_fetch_bytes=4 << 20)
    started, cpu = time.perf_counter(), time.process_time()
    await consumer.start()
    read = 0
    try:
        ends = await kafka.read_from_start(consumer, topics)
        total = sum(ends.values())
        while read < total:
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            for batch in batches.values():
                if on_record is not None:
                    for record in batch:
                        on_record(record)
                read += len(batch)
    finally:
        await consumer.stop()
    return Pass(read, time.perf_counter() - started, time.process_time() - cpu)
