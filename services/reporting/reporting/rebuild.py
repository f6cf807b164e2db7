"""Rebuilding every read model from offset 0, beside the live ones (blue/green).

Reads the event topics directly (no consumer group, so nothing the live consumer
tracks is touched; reporting publishes nothing, so a rebuild has no side effect), fills
a new generation in batches, and swaps it in once it has caught up with the live one.

In several processes, the records that were on the topics when it began are shared out
by their key. That is safe because all events of a document share one record key (the
trajectory id: an LBU offer's events carry its trajectory's), so no two processes ever
write the same document; their receipts are theirs too, since a republished event keeps
its key. By default (`workers=None`) each process reads one partition of every topic,
when the topics have as many partitions each: the services' producers put a key on the
partition Kafka's default partitioner gives it, so one partition number holds all of a
key's records. Each process checks that of every record it reads (a topic given more
partitions later breaks it); if one is not, the rebuild starts again with every process
reading every partition and folding the keys that hash to it, as it does with an
explicit number of `workers`. The positions are written once every process is done, and
the rebuild then catches up and swaps alone.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from contextlib import contextmanager, suppress
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2

from contracts.envelope import PoisonRecord, from_record
from contracts.incarnation import topic_ids, tracked
from contracts.kafka import KafkaSecurity, read_from_start, reader
from reporting.store import Record, ReportingStore

# Records per store transaction. Larger batches write each touched document once for more
# of its events and commit less often (2,000 → 10,000 took 200k events from 9k to 13k
# events/s in bench/); 10,000 decoded events hold some 30 MB, and SQLite's write lock is
# held for well under a second per batch.
BATCH = 10_000
# The cyclic garbage collector's thresholds while a rebuild runs. It allocates millions of
# short-lived objects while it keeps thousands of documents, and with the default (700
# allocations) the collector's passes over those took a fifth of its CPU (bench/). What it
# allocates holds no cycles that need collecting sooner; reference counting frees it.
GC_THRESHOLDS = (100_000, 50, 100)
# More processes than this read every record that many times over for little more gain.
MAX_WORKERS = 4

log = logging.getLogger(__name__)


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
                  progress: Callable[[int], Progress] = Progress, timeout: float = 3600,
                  workers: int | None = 1) -> dict:
    """Builds a new generation from offset 0 and makes it live; returns a summary.

    `workers`: how many processes share the records there were at the start, by key; None
    for one per partition (see above), or one per core when that cannot be.

    While the store applies one batch (in a worker thread: SQLite and PostgreSQL release
    the GIL), the next is fetched and decoded; batches are still applied one after the
    other, in order. The swap is tried only once the ends the topics had at the start
    have been read, so a slow fetch is never mistaken for having caught up."""
    with _few_collections():
        started = time.monotonic()
        generation = store.begin_rebuild()
        consumer = _consumer(bootstrap_servers)
        await consumer.start()
        try:
            ends = await read_from_start(consumer, topics)
            names = await _tracked_names(consumer, store, topics)
            bar = progress(sum(ends.values()))
            read = applied = 0
            shares = processes = _shares(ends, workers)
            if shares > 1:
                try:
                    read, applied = await _in_processes(store, bootstrap_servers, generation, ends, shares, bar,
                                                        names, by_partition=workers is None and _partitioned(ends) > 1)
                except NotWherePartitioned:
                    log.warning("records not on the partition their key gives: rebuilding by key")
                    generation = store.begin_rebuild()  # the partial one is left, as by any failed rebuild
                    bar.close()
                    bar = progress(sum(ends.values()))
                    processes = _cores()
                    read, applied = await _in_processes(store, bootstrap_servers, generation, ends,
                                                        processes, bar, names, by_partition=False)
                for tp, end in ends.items():
                    consumer.seek(tp, end)
            more, more_applied = await _apply_until_live(consumer, store, generation, ends, bar,
                                                         names, deadline=started + timeout)
            bar.close()
        finally:
            # Swapped in (nothing left to write) or given up: what it holds is written and let
            # go. When the store is what failed, that fails too and the error is the news.
            with suppress(Exception):
                await asyncio.to_thread(store.forget_rebuild)
            await consumer.stop()
    seconds = time.monotonic() - started
    read += more
    return {"generation": generation, "records": read, "applied": applied + more_applied,
            "processes": max(processes, 1), "seconds": round(seconds, 3),
            "events_per_second": round(read / max(seconds, 1e-6))}


@contextmanager
def _few_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.freeze()  # what the process holds already (modules, the app) is never looked at
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def _consumer(bootstrap_servers: str) -> AIOKafkaConsumer:
    return reader(bootstrap_servers, security=KafkaSecurity.from_env(service="reporting"),
                  max_partition_fetch_bytes=4 << 20)


async def _tracked_names(consumer: AIOKafkaConsumer, store: ReportingStore,
                         topics: Sequence[str]) -> dict[str, str]:
    """The names the store keeps its positions on each topic under: those of the topic's
    incarnation as it is now (contracts.incarnation), as the live consumer's are."""
    found = await topic_ids(consumer._client, topics)
    return {topic: tracked(topic, await asyncio.to_thread(store.incarnation, topic, topic_id))
            for topic, topic_id in found.items()}


async def _apply_until_live(consumer: AIOKafkaConsumer, store: ReportingStore, generation: int,
                            ends: dict[TopicPartition, int], bar: Progress, names: dict[str, str], *,
                            deadline: float) -> tuple[int, int]:
    """Applies what the consumer reads until the generation is swapped in; returns how many
    records were read and applied."""
    applied = read = 0
    writing: asyncio.Future[int] | None = None  # the batch the store is applying
    try:
        while True:
            records, fetched = await _next_batch(consumer, names=names)
            read += fetched
            if writing is not None:
                applied += await writing
                writing = None
            if records:
                writing = asyncio.ensure_future(asyncio.to_thread(store.apply_batch, generation, records))
                bar.advance(len(records))
            elif not fetched and await _reached(consumer, ends) \
                    and await asyncio.to_thread(store.swap, generation):
                return read, applied
            if time.monotonic() > deadline:
                raise TimeoutError("rebuild did not catch up with the live read models")
    finally:
        if writing is not None:  # a thread cannot be cancelled: let it finish before the store closes
            await asyncio.gather(writing, return_exceptions=True)


# --- in several processes ------------------------------------------------------------

_progress: Any = None  # in each process: the shared count of records it has read
_stop: Any = None  # in each process: set by the one that found a record off its partition


class NotWherePartitioned(Exception):
    """A record is not on the partition the default partitioner gives its key."""


def _cores() -> int:
    return min(os.cpu_count() or 1, MAX_WORKERS)


def _partitioned(ends: dict[TopicPartition, int]) -> int:
    """How many partitions each topic has, if they all have as many (else 0)."""
    counts = {topic: sum(tp.topic == topic for tp in ends) for topic in {tp.topic for tp in ends}}
    return next(iter(counts.values())) if len(set(counts.values())) == 1 else 0


def _shares(ends: dict[TopicPartition, int], workers: int | None) -> int:
    """How many processes: one per partition number (at most MAX_WORKERS, each taking every
    n-th) when asked for None and the topics allow it, else `workers` or one per core."""
    if not any(ends.values()):
        return 0
    if workers is None:
        return min(_partitioned(ends), MAX_WORKERS) or _cores()
    return workers if workers > 1 else 0


@dataclass(frozen=True)
class _Share:
    """Which records one process applies: those of every `of`-th partition number, or
    those whose key hashes to it."""

    index: int
    of: int
    by_partition: bool


def _share_progress(counter: Any, stop: Any) -> None:
    global _progress, _stop
    _progress, _stop = counter, stop


async def _in_processes(store: ReportingStore, bootstrap_servers: str, generation: int,
                        ends: dict[TopicPartition, int], workers: int, bar: Progress,
                        names: dict[str, str], *, by_partition: bool) -> tuple[int, int]:
    """Applies every record below `ends` in `workers` processes; returns how many records
    there were and how many were applied, and leaves the generation's positions at `ends`."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads and a loop
    counter, stop = context.Value("q", 0), context.Value("b", 0)
    spans = [(tp.topic, tp.partition, end) for tp, end in ends.items()]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_share_progress,
                             initargs=(counter, stop)) as pool:
        shares = [loop.run_in_executor(pool, _fill_share, store.url, bootstrap_servers, generation, spans,
                                       _Share(index, workers, by_partition)) for index in range(workers)]
        done = asyncio.ensure_future(asyncio.gather(*shares))
        shown = 0
        while not done.done():
            await asyncio.wait([done], timeout=0.5)
            now = counter.value if by_partition else counter.value // workers  # by key: each reads all
            bar.advance(now - shown)
            shown = now
        applied = sum(await done)
    await asyncio.to_thread(store.set_positions, generation,
                            {(names.get(tp.topic, tp.topic), tp.partition): end - 1
                             for tp, end in ends.items() if end})
    await asyncio.to_thread(store.join_rebuild, generation)
    return sum(ends.values()), applied


def _fill_share(database_url: str, bootstrap_servers: str, generation: int,
                spans: list[tuple[str, int, int]], share: _Share) -> int:
    """In a process of its own: applies the records below each partition's end that fall
    to `share`; returns how many took effect."""
    with _few_collections():
        store = ReportingStore(database_url)
        try:
            store.join_rebuild(generation, documents_only=True)
            applied = asyncio.run(_fill(store, bootstrap_servers, generation, spans, share))
            store.forget_rebuild()
            return applied
        finally:
            store.close()


async def _fill(store: ReportingStore, bootstrap_servers: str, generation: int,
                spans: list[tuple[str, int, int]], share: _Share) -> int:
    every = {TopicPartition(topic, partition): end for topic, partition, end in spans}
    ends = {tp: end for tp, end in every.items() if not share.by_partition or tp.partition % share.of == share.index}
    count = _partitioned(every)
    consumer = _consumer(bootstrap_servers)
    await consumer.start()
    applied = 0
    writing: asyncio.Future[int] | None = None
    placed: dict[bytes, int] = {}  # key -> its partition, by the default partitioner (murmur2)

    def mine(tp: TopicPartition, record: Any) -> bool:
        if record.offset >= ends[tp]:
            return False
        if not share.by_partition:
            # crc32, not hash(): the same in every process. A keyless record is poison;
            # any one share may skip it.
            return zlib.crc32(record.key or b"") % share.of == share.index
        if record.key is not None:
            partition = placed.get(record.key)
            if partition is None:
                partition = placed[record.key] = (murmur2(record.key) & 0x7FFFFFFF) % count
            if partition != tp.partition:
                if _stop is not None:
                    _stop.value = 1  # the others stop too: their work is lost with this one's
                raise NotWherePartitioned(f"{tp.topic}/{tp.partition}/{record.offset}")
        return True

    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        while not await _reached(consumer, ends):
            records, fetched = await _next_batch(consumer, mine)
            _progress_add(fetched)
            if writing is not None:
                applied += await writing
                writing = None
            if records:
                writing = asyncio.ensure_future(asyncio.to_thread(store.apply_batch, generation, records))
        if writing is not None:
            applied += await writing
            writing = None
    finally:
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)
        await consumer.stop()
    return applied


def _progress_add(n: int) -> None:
    if _stop is not None and _stop.value:
        raise NotWherePartitioned("another process found a record off its key's partition")
    if _progress is not None:
        with _progress.get_lock():
            _progress.value += n


async def _next_batch(consumer: AIOKafkaConsumer,
                      wanted: Callable[[TopicPartition, Any], bool] | None = None,
                      names: dict[str, str] | None = None) -> tuple[list[Record], int]:
    """Up to BATCH decoded records (only the `wanted`, when given): what has been fetched
    already, or the first to arrive within 200 ms. Returns them and how many records were
    read (poison and unwanted included). Positions go under `names` (by topic)."""
    names = names or {}
    records: list[Record] = []
    fetched = 0
    # A share of the records makes a whole batch too (fewer, fuller transactions), but
    # what is read in one go stays bounded.
    while len(records) < BATCH and fetched < BATCH * 4:
        batches = await consumer.getmany(timeout_ms=0 if fetched else 200, max_records=BATCH - len(records))
        if not batches:
            break
        for tp, batch in batches.items():
            for r in batch:
                if wanted is not None and not wanted(tp, r):
                    continue
                try:
                    records.append((from_record(r.key, r.value, list(r.headers)),
                                    names.get(tp.topic, tp.topic), tp.partition, r.offset))
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
