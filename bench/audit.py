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
instead of one per aggregate. Same rows, same chains; a million in about a minute.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from eventsourcing.domain import Aggregate, event

from bench.report import Figure
from contracts.chain import ChainedMapper
from contracts.service import ServiceApplication, store_env

STAGE = "c. audit replay"
AUDITED_EVENTS = 200
FILLER_EVENTS = 10  # per filler aggregate
BATCH = 20_000
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
    """Fills the store to `total` events; returns the audited aggregate's id and a filler's."""
    filler_mapper = ChainedMapper(transcoder=app.mapper.transcoder, compressor=app.mapper.compressor,
                                  cipher=app.mapper.cipher)
    audited = Case("alkmaar", DAY)
    app.save(audited)
    fillers = max(0, (total - AUDITED_EVENTS) // FILLER_EVENTS)
    every = max(1, fillers // (AUDITED_EVENTS - 1))  # a step of the audited case between fillers
    batch: list = []
    sample = None
    for n in range(fillers):
        case = Case("heiloo", DAY)
        _steps(case, FILLER_EVENTS - 1)
        sample = sample or case.id
        batch += [filler_mapper.to_stored_event(e) for e in case.collect_events()]
        if len(batch) >= BATCH or (n + 1) % every == 0:
            app.recorder.insert_events(batch)
            batch = []
        if (n + 1) % every == 0 and audited.version < AUDITED_EVENTS:
            _steps(audited, 1)
            app.save(audited)
    if batch:
        app.recorder.insert_events(batch)
    while audited.version < AUDITED_EVENTS:
        _steps(audited, 1)
        app.save(audited)
    return audited.id, sample or audited.id


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
