"""Stage b, rebuild: reporting's read models rebuilt from offset 0 of three topics that
hold N events, compared with reading and decoding the same topics and nothing else.

The rebuild is `reporting.rebuild.rebuild` on a `ReportingStore` (SQLite, the default),
exactly as `tweespoor-reporting rebuild` runs it by default: in one process per partition
(three here). The limit is the least any rebuild has to do: consume every record and decode
it with `contracts.envelope.from_record`, in one process. Its CPU per event is compared
with the rebuild's over all its processes, so the extra processes are no free lunch there.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from bench import kafka_io, loader, workload
from bench.report import Figure
from contracts.envelope import PoisonRecord, from_record
from reporting.rebuild import rebuild
from reporting.store import ReportingStore

STAGE = "b. rebuild"
MILLION = 1_000_000
TARGET_SECONDS_PER_MILLION = 60.0
TARGET_RATIO = 0.50


async def load(bootstrap: str, n: int) -> tuple[list[str], int, float]:
    """Three fresh topics holding `n` events; returns them, the republished count, seconds."""
    names = kafka_io.run_topics("intake", "trajectory", "coaching")
    by_real_topic = {workload.SERVICE_TOPICS[service]: topic for service, topic in names.items()}
    await kafka_io.create_topics(bootstrap, names.values())
    # generated in a second process while this one produces
    sent, republished, seconds = await loader.load(bootstrap, by_real_topic, n)
    assert sent == n
    return list(names.values()), republished, seconds


def _decode(record) -> None:
    try:
        from_record(record.key, record.value, list(record.headers))
    except PoisonRecord:
        pass  # as the rebuild: skipped


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the rebuild's processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def measure(bootstrap: str, topics: list[str], n: int, republished: int,
                  workdir: Path | None = None, workers: int | None = None) -> dict[str, Figure]:
    reference = await kafka_io.consume(bootstrap, topics, _decode)
    assert reference.records == n, f"read {reference.records} of {n}"
    with tempfile.TemporaryDirectory(prefix="tweespoor-bench-", dir=workdir) as tmp:
        store = ReportingStore(f"sqlite:///{tmp}/reporting.db")
        try:
            started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
            summary = await rebuild(store, bootstrap, topics, workers=workers)
            rebuild_s = time.perf_counter() - started
            rebuild_cpu = time.process_time() - cpu + _children_cpu() - children
            documents = sum(len(store.documents(kind)) for kind in ("trajectory", "offer"))
        finally:
            store.close()
    assert summary["records"] == n and summary["applied"] == n - republished, summary
    limit = n / reference.seconds
    target_s = TARGET_SECONDS_PER_MILLION * n / MILLION
    rate = n / rebuild_s
    per_event = {name: cpu_s / n * 1e6 for name, cpu_s in (("decode", reference.cpu_seconds),
                                                             ("rebuild", rebuild_cpu))}
    return {
        "decode": Figure(STAGE, f"consume + decode {n:,} events (from_record)", limit, "events/s",
                         note="the limit for the rebuild"),
        "rate": Figure(STAGE, f"rebuild from offset 0 (SQLite, {summary['processes']} "
                              f"process{'es' if summary['processes'] > 1 else ''})",
                       rate, "events/s",
                       limit_name="consume + decode", limit=limit, target=f"ratio >= {TARGET_RATIO:.2f}",
                       met=rate / limit >= TARGET_RATIO,
                       note=f"{n - republished:,} applied, {republished:,} republished skipped, "
                            f"{documents:,} documents"),
        "time": Figure(STAGE, f"rebuild time for {n:,} events", rebuild_s, "s",
                       target=f"< {target_s:.0f} s (60 s per million)", met=rebuild_s < target_s),
        # CPU time drifts far less than wall-clock time on a shared machine: the same
        # comparison, as CPU microseconds per event (lower is better, so limit / value).
        "cpu": Figure(STAGE, "CPU per event: rebuild (all threads and processes)", per_event["rebuild"], "µs",
                      limit_name="CPU per event: consume + decode", limit=per_event["decode"],
                      note=f"ratio = rebuild / decode CPU; {per_event['decode'] / per_event['rebuild']:.2f} "
                           "is the CPU-bound share of the limit"),
    }
