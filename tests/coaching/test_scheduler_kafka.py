"""The coaching scheduler against the real store (SQLite and PostgreSQL) and the real
broker: run twice, by two instances or two processes at once, killed halfway and
restarted, or replayed, each due event is recorded once and published once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import pytest
from eventsourcing.persistence import IntegrityError

from contracts.events import CheckInOverdue, CoachingStarted, SixMonthPointReached
from coaching.scheduler import Scheduler
from services.coaching.tests.support import Feed, Trajectory, published
from tests.coaching.conftest import STARTS

pytestmark = [pytest.mark.kafka]

# On 14 July 2027 check-ins 1 to 4 are overdue and the six-month point has passed.
TODAY = dt.date(2027, 7, 14)
PER_PLAN = 5
MUNICIPALITIES = ("alkmaar", "bergen", "castricum", "heiloo")


def place(world) -> list[Trajectory]:
    trajectories = [Trajectory(m) for m in MUNICIPALITIES]
    Feed(world.coaching)(*(e for t in trajectories for e in (t.opened(), t.placed(STARTS))))
    world.clock.set(TODAY)
    return trajectories


def stored_due_events(app) -> Counter:
    """(plan, kind, check-in) of every scheduled event in the store."""
    return Counter(_identity(e) for e in published(app)
                   if isinstance(e, (CheckInOverdue, SixMonthPointReached)))


def _identity(data) -> tuple:
    return (data.plan_id, type(data).__name__, getattr(data, "check_in", None))


async def assert_published_once(world) -> None:
    await world.relay(world.app()).relay_once()
    events = [e.data for e in await world.published()]
    due = Counter(_identity(e) for e in events if isinstance(e, (CheckInOverdue, SixMonthPointReached)))
    assert len(due) == PER_PLAN * len(MUNICIPALITIES)
    assert set(due.values()) == {1}, "a due event was published twice"
    assert sum(isinstance(e, CoachingStarted) for e in events) == len(MUNICIPALITIES)


async def test_running_the_scheduler_twice_records_each_due_event_once(world):
    place(world)
    scheduler = Scheduler(world.coaching)
    assert scheduler.run_once() == PER_PLAN * len(MUNICIPALITIES)
    assert scheduler.run_once() == 0
    assert Scheduler(world.app()).run_once() == 0  # nor does a scheduler started afresh
    await assert_published_once(world)


async def test_two_instances_on_one_store_racing_record_each_due_event_once(world):
    place(world)
    first, second = world.coaching, world.app()
    barrier, conflicts = threading.Barrier(2), []
    for app in (first, second):  # both decide on the same plan version, then both write
        app.save = _after_barrier(app.save, barrier, conflicts)
    results = await asyncio.gather(asyncio.to_thread(Scheduler(first).run_once),
                                   asyncio.to_thread(Scheduler(second).run_once))
    assert conflicts  # the race really happened (and went on), and the store let one through
    assert sum(results) == PER_PLAN * len(MUNICIPALITIES)
    assert set(stored_due_events(first).values()) == {1}
    await assert_published_once(world)


def _after_barrier(save, barrier, conflicts):
    state = {"waited": False}

    def save_after_the_other_decided(*aggregates, **kwargs):
        if not state["waited"]:
            state["waited"] = True
            barrier.wait(timeout=30)
        try:
            return save(*aggregates, **kwargs)
        except IntegrityError:
            conflicts.append(aggregates[0].id)
            raise

    return save_after_the_other_decided


SCHEDULER = """
import datetime as dt, os, signal, sys, time
from contracts.service import store_env
from coaching.application import CoachingApplication
from coaching.scheduler import Scheduler

url, today, start_at, die = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "die"
app = CoachingApplication(store_env(url), clock=lambda: today)
if die:  # killed for good right after the first plan's events are stored
    act = app.act_until
    def act_then_die(plan_id, day):
        recorded = act(plan_id, day)
        if recorded:
            os.kill(os.getpid(), signal.SIGKILL)
        return recorded
    app.act_until = act_then_die
app.index.catch_up()
while time.time() < start_at:
    time.sleep(0.001)
print(Scheduler(app).run_once(), flush=True)
"""


def scheduler_process(url: str, start_at: float, die: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SCHEDULER, url, TODAY.isoformat(),
                             str(start_at), "die" if die else "live"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


async def test_two_scheduler_processes_at_once_record_each_due_event_once(world):
    place(world)
    start_at = time.time() + 4.0  # both loaded and caught up, then off together
    processes = [scheduler_process(world.url, start_at) for _ in range(2)]
    outputs = [await asyncio.to_thread(p.communicate, timeout=120) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
    assert sum(int(out.strip()) for out, _ in outputs) == PER_PLAN * len(MUNICIPALITIES)
    assert set(stored_due_events(world.coaching).values()) == {1}
    await assert_published_once(world)


async def test_a_scheduler_killed_halfway_catches_up_after_restart_and_repeats_nothing(world):
    place(world)
    killed = scheduler_process(world.url, time.time(), die=True)
    _, err = await asyncio.to_thread(killed.communicate, timeout=120)
    assert killed.returncode == -9, err[-2000:]
    assert sum(stored_due_events(world.app()).values()) == PER_PLAN  # one plan's, then death

    restarted = Scheduler(world.app())
    assert restarted.run_once() == PER_PLAN * (len(MUNICIPALITIES) - 1)
    assert restarted.run_once() == 0
    await assert_published_once(world)


async def test_replaying_the_history_rebuilds_the_plans_and_sends_nothing_again(world):
    trajectories = place(world)
    Scheduler(world.coaching).run_once()
    relay = world.relay()
    while await relay.relay_once():
        pass
    before = await world.published()

    replayed = world.app()  # a new process on the same store: everything from the history
    plan_ids = [uuid.UUID(p["plan_id"]) for p in replayed.plans(lambda s: True)]
    assert len(plan_ids) == len(trajectories)
    for plan_id in plan_ids:
        assert replayed.plan(plan_id) == world.coaching.plan(plan_id)
    assert Scheduler(replayed).run_once() == 0
    assert await world.relay(replayed).relay_once() == 0
    assert len(await world.published()) == len(before)
