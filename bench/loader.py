"""Loading the benchmark's events onto Kafka fast: the setup of the rebuild, not a measurement.

A worker process generates the records (`workload.records`) and hands them over in
chunks, already encoded and grouped by topic and partition, while this process fills
whole record batches with them (aiokafka's `create_batch`/`send_batch`) instead of
sending one record at a time: on two cores generating and producing overlap. Each record
goes to the partition the producer's default partitioner picks for its key, in the order
generated, so the topics hold the same records as `kafka_io.produce` would put there.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from bench import kafka_io, workload

CHUNK = 5_000  # records per hand-over: large enough to make pickling cheap per record
AHEAD = 8  # chunks the worker may be ahead of the producer (bounded memory)
WORKER_TIMEOUT = 1.0  # seconds between checks that the worker is still alive

Rows = list[tuple[bytes, bytes, list[tuple[str, bytes]]]]  # key, value, headers


async def load(bootstrap: str, topics: Mapping[str, str], total: int, seed: int = 9) -> tuple[int, int, float]:
    """Puts `workload.records(total, seed)` on Kafka, each workload topic on the topic
    `topics` maps it to; returns how many records, how many were republished, and the
    seconds from start until the last was acknowledged."""
    started = time.perf_counter()
    producer = kafka_io.raw_producer(bootstrap)
    await producer.start()
    try:
        partitions = {name: sorted(await producer.partitions_for(topic)) for name, topic in topics.items()}
        context = multiprocessing.get_context("spawn")  # no fork of a process running an event loop
        chunks = context.Queue(maxsize=AHEAD)
        worker = context.Process(target=_generate, args=(chunks, total, seed, partitions),
                                 name="bench-loader", daemon=True)
        worker.start()
        try:
            sent, republished = await _produce(producer, topics, chunks, worker)
        finally:
            if worker.is_alive():
                worker.kill()
            worker.join()
    finally:
        await producer.stop()
    return sent, republished, time.perf_counter() - started


async def _produce(producer: Any, topics: Mapping[str, str], chunks: Any, worker: Any) -> tuple[int, int]:
    """Appends each chunk's rows to the open batch of their partition, sending every batch
    that is full; the last, partly filled ones at the end. Sending a batch waits only for
    the previous batch of its partition to be taken by the sender, so order is kept."""
    building: dict[tuple[str, int], Any] = {}
    delivered: list[asyncio.Future[Any]] = []
    sent = 0
    while True:
        chunk = await asyncio.to_thread(_next, chunks, worker)
        if isinstance(chunk, int):  # the end: how many were republished
            break
        for (name, partition), rows in chunk.items():
            batch = building.get((name, partition)) or producer.create_batch()
            for key, value, headers in rows:
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    delivered.append(await producer.send_batch(batch, topics[name], partition=partition))
                    batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise ValueError("a record larger than a whole batch")
            building[(name, partition)] = batch
            sent += len(rows)
    for (name, partition), batch in building.items():
        if batch.record_count():
            delivered.append(await producer.send_batch(batch, topics[name], partition=partition))
    await asyncio.gather(*delivered)
    return sent, chunk


def _next(chunks: Any, worker: Any) -> dict[tuple[str, int], Rows] | int:
    """The worker's next chunk, or the republished count at the end; raises when the
    worker failed or died."""
    while True:
        try:
            item = chunks.get(timeout=WORKER_TIMEOUT)
        except queue.Empty:
            if not worker.is_alive():
                raise RuntimeError(f"the loader's generator exited with code {worker.exitcode}") from None
            continue
        if isinstance(item, BaseException):
            raise item
        return item


def _generate(chunks: Any, total: int, seed: int, partitions: Mapping[str, list[int]]) -> None:
    """The worker: chunks of rows by (workload topic, partition), then the republished
    count; an exception is handed over instead of being lost with the process."""
    try:
        stats: Counter[str] = Counter()
        partition_of = _Partitions(partitions)
        chunk: defaultdict[tuple[str, int], Rows] = defaultdict(list)
        for n, (name, key, value, headers) in enumerate(workload.records(total, seed, stats), start=1):
            chunk[(name, partition_of(name, key))].append((key, value, headers))
            if n % CHUNK == 0:
                chunks.put(dict(chunk))
                chunk.clear()
        if chunk:
            chunks.put(dict(chunk))
        chunks.put(stats["republished"])
    except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
        chunks.put(error)


class _Partitions:
    """The producer's default partitioner (murmur2 of the key), once per key: a
    trajectory's some 19 events share one."""

    def __init__(self, partitions: Mapping[str, list[int]]) -> None:
        self._partitions = partitions
        self._partitioner = DefaultPartitioner()
        self._known: dict[tuple[str, bytes], int] = {}

    def __call__(self, name: str, key: bytes) -> int:
        found = self._known.get((name, key))
        if found is None:
            every = self._partitions[name]
            found = self._known[(name, key)] = self._partitioner(key, every, every)
        return found
