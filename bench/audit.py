"""Stage c, audit replay: one 200-event aggregate read back (`repository.get`) and its hash
chain verified (`verify_chain`), in a store of about a thousand and of about a million
events. Replay should depend on the aggregate, not on how much else the store holds.

The store is a real `ServiceApplication` on SQLite (the embedded default), so every event
is stored through `contracts.chain.ChainedMapper`. The aggregate under audit is saved one
event at a time with `app.save`, spread evenly through the store, as a long trajectory's
events are in production. The filler — other aggregates of ten events each — is made of
real aggregate events mapped by a ChainedMapper of its own (which chains each event to
the one it mapped just before, in memory, instead of reading it back from the store) and
written with the recorder's `insert_events` in large batches: one transaction per batch
instead of one per aggregate. Same chains; a large filler is made and mapped in two worker
processes while this one writes it.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from bench.report import Figure
from contracts.chain import ChainedMapper
from contracts.service import ServiceApplication, store_env

STAGE = "c. audit replay"
AUDITED_EVENTS = 200
FILLER_EVENTS = 10  # per filler aggregate
BATCH = 20_000
FILLER_WORKERS = 2  # processes making the filler while this one writes it
IN_PROCESS = 50_000  # filler events below which no worker process is started
TARGET_P99_MS = 50.0
TARGET_RATIO = 1.5
DAY = dt.date(2026, 3, 2)


class Case(Aggregate):
    """A trajectory-like aggregate: opened, then one note per step."""

    @event("Opened")
    def __init__(self, municipality: str, opened_on: dt.date) -> None:
        self.municipality = municipality
        self.opened_on = opened_on
        self.notes = 0

    @event("Noted")
    def note(self, kind: str, on: dt.date, provider: str) -> None:
        self.notes += 1


class AuditedStore(ServiceApplication):
    """The smallest ServiceApplication: it consumes nothing, it only keeps Cases."""

    group = "bench-audit"


def _steps(case: Case, n: int) -> None:
    for i in range(n):
        case.note(kind=("check-in", "obstacle", "contract")[i % 3], on=DAY + dt.timedelta(days=i),
                  provider="agens")


def fill(app: AuditedStore, total: int) -> tuple[uuid.UUID, uuid.UUID]:
    """Fills the store to `total` events; returns the audited aggregate's id and a filler's.
    The filler is made and mapped in worker processes (each aggregate's chain is its own,
    so they need nothing from the store) while this process writes it, in order."""
    audited = Case("alkmaar", DAY)
    app.save(audited)
    fillers = max(0, (total - AUDITED_EVENTS) // FILLER_EVENTS)
    every = max(1, fillers // (AUDITED_EVENTS - 1))  # a step of the audited case between fillers
    sample = None
    with _pool(fillers * FILLER_EVENTS) as pool:
        for done, rows in pool.map(_filler_rows, _segments(fillers, every)):
            app.recorder.insert_events([StoredEvent(*row) for row in rows])
            sample = sample or uuid.UUID(rows[0][0])
            if done % every == 0 and audited.version < AUDITED_EVENTS:
                _steps(audited, 1)
                app.save(audited)
    while audited.version < AUDITED_EVENTS:
        _steps(audited, 1)
        app.save(audited)
    return audited.id, sample or audited.id


def _pool(events: int) -> Executor:
    """Worker processes for a large filler; a small one is made here at once (starting
    the workers would take longer than the whole of it)."""
    if events < IN_PROCESS:
        return _InProcess()
    return ProcessPoolExecutor(max_workers=FILLER_WORKERS, mp_context=multiprocessing.get_context("spawn"))


class _InProcess(Executor):
    def map(self, fn, *iterables, **_):  # type: ignore[override]
        return map(fn, *iterables)


def _segments(fillers: int, every: int) -> Iterator[tuple[int, int]]:
    """(fillers written before, how many now): up to the next step of the audited case,
    at most a batch of events at a time."""
    per_batch = max(1, BATCH // FILLER_EVENTS)
    start = 0
    while start < fillers:
        end = min(fillers, (start // every + 1) * every, start + per_batch)
        yield start, end - start
        start = end


_mapper: ChainedMapper | None = None  # one per worker process


def _filler_rows(segment: tuple[int, int]) -> tuple[int, list[tuple[str, int, str, bytes]]]:
    """In a worker: `count` filler aggregates of ten real events, mapped by a ChainedMapper
    that chains each event to the one it mapped before it (in memory, not read back from
    the store); rows as the recorder writes them, and how many fillers are then written."""
    global _mapper
    if _mapper is None:
        app = AuditedStore(env=store_env("memory:"))  # the same transcoder as the store's
        _mapper = ChainedMapper(transcoder=app.mapper.transcoder, compressor=app.mapper.compressor,
                                cipher=app.mapper.cipher)
    start, count = segment
    rows = []
    for _ in range(count):
        case = Case("heiloo", DAY)
        _steps(case, FILLER_EVENTS - 1)
        for stored in map(_mapper.to_stored_event, case.collect_events()):
            rows.append((stored.originator_id.hex, stored.originator_version, stored.topic, stored.state))
    return start + count, rows


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def replay(app: AuditedStore, case_id: uuid.UUID, repeats: int) -> list[float]:
    """Milliseconds per replay: every event read and folded, and the chain verified."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        case = app.repository.get(case_id)
        report = app.verify_chain(case_id)
        samples.append((time.perf_counter() - started) * 1000)
        assert case.version == AUDITED_EVENTS and report.intact and report.events == AUDITED_EVENTS, report
    return samples


def measure(small: int, large: int, workdir: Path | None = None, repeats: int = 400) -> dict[str, Figure]:
    with tempfile.TemporaryDirectory(prefix="tweespoor-bench-audit-", dir=workdir) as tmp:
        apps = {size: AuditedStore(env=store_env(f"sqlite:///{tmp}/audit-{size}.db")) for size in (small, large)}
        try:
            audited, fill_s = {}, {}
            for size, app in apps.items():
                started = time.perf_counter()
                audited[size], filler = fill(app, size)
                fill_s[size] = time.perf_counter() - started
                assert app.verify_chain(filler).intact  # the bulk-written filler chains hold too
                replay(app, audited[size], 20)  # warm up: statement caches, first page reads
            # Alternating, so that both stores see the same noise from a shared machine.
            samples: dict[int, list[float]] = {small: [], large: []}
            for _ in range(repeats):
                for size, app in apps.items():
                    samples[size] += replay(app, audited[size], 1)
        finally:
            for app in apps.values():
                app.close()
    p99 = {size: _p99(s) for size, s in samples.items()}
    p50 = {size: statistics.median(s) for size, s in samples.items()}
    ratio = p99[large] / p99[small]
    return {
        "small": Figure(STAGE, f"p99, {AUDITED_EVENTS} events, store of {small:,}", p99[small], "ms",
                        target=f"< {TARGET_P99_MS:.0f} ms", met=p99[small] < TARGET_P99_MS,
                        note=f"p50 {p50[small]:.1f} ms; the limit for the large store"),
        "large": Figure(STAGE, f"p99, {AUDITED_EVENTS} events, store of {large:,}", p99[large], "ms",
                        limit_name="p99 in the small store", limit=p99[small],
                        target=f"< {TARGET_P99_MS:.0f} ms, ratio <= {TARGET_RATIO}",
                        met=p99[large] < TARGET_P99_MS and ratio <= TARGET_RATIO,
                        note=f"p50 {p50[large]:.1f} ms; {repeats} replays each, alternating; filled in "
                             f"{fill_s[large]:.0f} s ({large / fill_s[large]:,.0f} events/s, bulk)"),
    }
