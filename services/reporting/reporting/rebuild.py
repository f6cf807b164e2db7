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
from reporting.store import Record, ReportingStore

BATCH = 2000


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
    """Builds a new generation from offset 0 and makes it live; returns a summary."""
    generation = store.begin_rebuild()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                isolation_level="read_committed", max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    started, applied, read = time.monotonic(), 0, 0
    try:
        partitions = []
        for topic in topics:
            found = consumer.partitions_for_topic(topic)
            if not found:
                await consumer._client.force_metadata_update()
                found = consumer.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        bar = progress(sum(ends.values()))
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            records: list[Record] = []
            for tp, batch in batches.items():
                for r in batch:
                    try:
                        records.append((from_record(r.key, r.value, list(r.headers)), tp.topic,
                                        tp.partition, r.offset))
                    except PoisonRecord:
                        continue  # the live consumer dead-letters it; a rebuild skips it alike
                read += len(batch)
            if records:
                applied += await asyncio.to_thread(store.apply_batch, generation, records)
                bar.advance(len(records))
            if not batches and await asyncio.to_thread(store.swap, generation):
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError("rebuild did not catch up with the live read models")
        bar.close()
    finally:
        await consumer.stop()
    seconds = time.monotonic() - started
    return {"generation": generation, "records": read, "applied": applied,
            "seconds": round(seconds, 3), "events_per_second": round(read / max(seconds, 1e-6))}
