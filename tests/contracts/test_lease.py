"""Once per store, on a real PostgreSQL server: two replicas' leases on one store, only one
held; the holder's session terminated, or its process SIGKILLed, and the standby holds it
within about two seconds; the holder that lost it cancels its leased work at once; a
holder that stops cleanly hands over (issue 17, item 4)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from contracts.lease import Lease
from tests.support.kafka_tools import eventually

pytestmark = [pytest.mark.postgres]

EVERY = 0.2
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(postgres) -> str:
    name = f"t_lease_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    return postgres.url(name)


class Work:
    """A leased job that runs until cancelled, and says when it started and stopped."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0

    @property
    def running(self) -> bool:
        return self.started > self.cancelled

    async def __call__(self) -> None:
        self.started += 1
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled += 1


class Replica:
    """One replica's lease, held in a task."""

    def __init__(self, url: str, service: str) -> None:
        self.lease = Lease(url, service=service, every=EVERY)
        self.work = Work()
        self.losses = 0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Replica:
        self.task = asyncio.create_task(self.lease.hold({"work": self.work}, on_loss=self._lost))
        return self

    def _lost(self) -> None:
        self.losses += 1

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def replicas(store) -> AsyncIterator[Callable[[], Replica]]:
    made: list[Replica] = []
    service = f"svc{uuid.uuid4().hex[:6]}"

    def make() -> Replica:
        made.append(Replica(store, service).start())
        return made[-1]

    yield make
    for replica in made:
        await replica.stop()


async def seconds_until(condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    await eventually(condition, timeout=timeout, interval=0.01)
    return time.monotonic() - started


async def test_of_two_replicas_on_one_store_one_holds_the_lease_and_runs_the_work(replicas, store):
    first = replicas()
    await eventually(lambda: first.lease.held and first.work.running, timeout=10)
    second = replicas()
    await asyncio.sleep(5 * EVERY)
    assert first.lease.held and not second.lease.held
    assert first.work.running and second.work.started == 0
    holder = await asyncio.to_thread(Lease.holder_of, store, first.lease.service)
    assert holder is not None and holder[0] == first.lease.identity == f"tweespoor-{first.lease.service}-lease:{os.getpid()}"


async def test_a_holder_whose_session_is_terminated_stops_its_work_and_the_standby_takes_over(replicas, store):
    first = replicas()
    await eventually(lambda: first.lease.held and first.work.running, timeout=10)
    second = replicas()
    await asyncio.sleep(3 * EVERY)
    holder = await asyncio.to_thread(Lease.holder_of, store, first.lease.service)
    assert holder is not None
    with psycopg.connect(store, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (holder[1],)).fetchone()[0]
    took = await seconds_until(lambda: second.lease.held and second.work.running, timeout=10)
    assert took < 2.0, f"the standby took {took:.2f} s"
    await eventually(lambda: not first.lease.held and not first.work.running, timeout=5)
    assert first.losses == 1 and first.lease.lost == 1 and first.work.cancelled == 1
    await asyncio.sleep(3 * EVERY)  # and it stands by now, trying again
    assert not first.lease.held and first.work.started == 1 and not first.task.done()


async def test_a_holder_that_stops_cleanly_hands_the_lease_over(replicas):
    first = replicas()
    await eventually(lambda: first.lease.held, timeout=10)
    second = replicas()
    await asyncio.sleep(3 * EVERY)
    await first.stop()
    assert first.work.cancelled == 1 and not first.lease.held
    took = await seconds_until(lambda: second.lease.held and second.work.running, timeout=10)
    assert took < 2.0, f"the standby took {took:.2f} s"


async def test_a_holder_process_killed_hands_the_lease_to_the_standby_within_two_seconds(replicas, store):
    service = f"svc{uuid.uuid4().hex[:6]}"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import asyncio, sys
            from contracts.lease import Lease
            async def main():
                lease = Lease({store!r}, service={service!r}, every={EVERY})
                async def work():
                    print("held", flush=True)
                    await asyncio.Event().wait()
                await lease.hold({{"work": work}})
            asyncio.run(main())
        """)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), timeout=30)
        assert line.strip() == b"held"
        standby = Replica(store, service).start()
        try:
            await asyncio.sleep(3 * EVERY)
            assert not standby.lease.held
            who = await asyncio.to_thread(Lease.holder_of, store, service)
            assert who is not None and who[0] == f"tweespoor-{service}-lease:{holder.pid}"
            os.killpg(holder.pid, signal.SIGKILL)
            took = await seconds_until(lambda: standby.lease.held and standby.work.running, timeout=10)
            assert took < 2.0, f"the standby took {took:.2f} s"
            who = await asyncio.to_thread(Lease.holder_of, store, service)
            assert who is not None and who[0] == standby.lease.identity
        finally:
            await standby.stop()
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


async def test_a_leased_job_that_dies_ends_the_lease_with_its_error(store):
    lease = Lease(store, service=f"svc{uuid.uuid4().hex[:6]}", every=EVERY)

    async def broken() -> None:
        raise RuntimeError("the desk fell over")

    with pytest.raises(RuntimeError, match="the desk fell over"):
        await asyncio.wait_for(lease.hold({"broken": broken}), timeout=10)
    assert not lease.held
    assert await asyncio.to_thread(Lease.holder_of, store, lease.service) is None  # released


async def test_on_sqlite_and_in_memory_the_lease_is_always_held(tmp_path):
    for url in (f"sqlite:///{tmp_path}/one.db", "memory:"):
        lease = Lease(url, service="intake", every=EVERY)
        work = Work()
        task = asyncio.create_task(lease.hold({"work": work}))
        await eventually(lambda: lease.held and work.running, timeout=5)  # noqa: B023
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not lease.held and work.cancelled == 1
