"""Rebuilding every read model from offset 0, beside the live ones (blue/green).

Reads the event topics directly (no consumer group, so nothing the live consumer
tracks is touched; reporting publishes nothing, so a rebuild has no side effect), fills
a new generation in batches, and swaps it in once it has caught up with the live one.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.envelope import PoisonRecord, from_record
from contracts.kafka import read_from_start
from reporting.store import Record, ReportingStore

# Records per store transaction. Larger batches write each touched document once for more
# of its events and commit less often (2,000 → 10,000 took 200k events from 9k to 13k
# events/s in bench/); 10,000 decoded events hold some 30 MB, and SQLite's write lock is
# held for well under a second per batch.
BATCH = 10_000


class Progress:
    """A one-line progress bar on a terminal (or nothing, when not one)."""

    def __init__(self, total: int, stream=sys.stderr) -> None:
        self.total, self.done, self.stream = max(total, 1), 0, stream
        self.started = time.monotonic()
        self.live = stream.isatty()

    def advance(self, n: int) -> None:
        self.done += n
        if self.live:
            share = min(self.done / self.total, 1.0)
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            bar = "#" * int(share * 30)
            self.stream.write(f"\rrebuild [{bar:<30}] {share:6.1%} {self.done}/{self.total} "
                              f"({rate:,.0f} events/s)")
            self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")


async def rebuild(store: ReportingStore, bootstrap_servers: str, topics: Sequence[str], *,
                  progress: Callable[[int], Progress] = Progress, timeout: float = 3600) -> dict:
    """Builds a new generation from offset 0 and makes it live; returns a summary.

    While the store applies one batch (in a worker thread: SQLite and PostgreSQL release
    the GIL), the next is fetched and decoded; batches are still applied one after the
    other, in order. The swap is tried only once the ends the topics had at the start
    have been read, so a slow fetch is never mistaken for having caught up."""
    generation = store.begin_rebuild()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                isolation_level="read_committed", max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    started, applied, read = time.monotonic(), 0, 0
    writing: asyncio.Future[int] | None = None  # the batch the store is applying
    try:
        ends = await read_from_start(consumer, topics)
        bar = progress(sum(ends.values()))
        while True:
            records, fetched = await _next_batch(consumer)
            read += fetched
            if writing is not None:
                applied += await writing
                writing = None
            if records:
                writing = asyncio.ensure_future(asyncio.to_thread(store.apply_batch, generation, records))
                bar.advance(len(records))
            elif not fetched and await _reached(consumer, ends) \
                    and await asyncio.to_thread(store.swap, generation):
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError("rebuild did not catch up with the live read models")
        bar.close()
    finally:
        if writing is not None:  # a thread cannot be cancelled: let it finish before the store closes
            await asyncio.gather(writing, return_exceptions=True)
        store.forget_rebuild()  # swapped in or given up: its documents need not stay in memory
        await consumer.stop()
    seconds = time.monotonic() - started
    return {"generation": generation, "records": read, "applied": applied,
            "seconds": round(seconds, 3), "events_per_second": round(read / max(seconds, 1e-6))}


async def _next_batch(consumer: AIOKafkaConsumer) -> tuple[list[Record], int]:
    """Up to BATCH decoded records: what has been fetched already, or the first to arrive
    within 200 ms. Returns them and how many records were read (poison included)."""
    records: list[Record] = []
    fetched = 0
    while fetched < BATCH:
        batches = await consumer.getmany(timeout_ms=0 if fetched else 200, max_records=BATCH - fetched)
        if not batches:
            break
        for tp, batch in batches.items():
            for r in batch:
                try:
                    records.append((from_record(r.key, r.value, list(r.headers)), tp.topic,
                                    tp.partition, r.offset))
                except PoisonRecord:
                    continue  # the live consumer dead-letters it; a rebuild skips it alike
            fetched += len(batch)
    return records, fetched


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether every partition has been read up to where it ended when the rebuild began."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
