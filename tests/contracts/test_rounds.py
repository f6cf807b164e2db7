"""The one loop of background work (issue 16): a failing round never stops the service, it
says so in a log line and on readiness until a round succeeds again; a round that did not
catch up is followed at once, one that did waits for the interval or a wakeup."""

import asyncio
import logging

import pytest

from contracts.health import Readiness
from contracts.rounds import in_thread, run_rounds
from contracts.wakeup import Wakeup


class Store:
    """A store that is away for the first `away` rounds."""

    def __init__(self, away: int) -> None:
        self.away, self.rounds = away, 0

    def work(self) -> int:
        self.rounds += 1
        if self.rounds <= self.away:
            raise ConnectionError("store away")
        return self.rounds


async def until(check, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_a_failing_round_is_logged_turns_readiness_red_and_is_tried_again(caplog):
    store, readiness, seen = Store(away=2), Readiness(), []
    caplog.set_level(logging.WARNING, logger="contracts.rounds")

    def watched() -> int:
        seen.append(dict(readiness.reasons))
        return store.work()

    task = asyncio.create_task(run_rounds(in_thread(watched), name="lbu_timer", interval=60,
                                          error_pause=0.01, readiness=readiness))
    try:
        await until(lambda: store.rounds >= 3 and not readiness.reasons)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen[0] == {} and "failing (ConnectionError)" in seen[2]["lbu_timer"]
    assert [r.message for r in caplog.records] == ["lbu_timer_failed", "lbu_timer_failed"]
    assert all(r.error == "ConnectionError" and "away" not in r.getMessage() for r in caplog.records)
    assert store.rounds == 3  # caught up after the third: it now waits the interval


async def test_a_round_that_did_not_catch_up_goes_on_and_a_wakeup_starts_the_next():
    store, wakeup = Store(away=0), Wakeup()
    task = asyncio.create_task(run_rounds(in_thread(store.work, lambda n: n >= 3), name="desk",
                                          interval=60, wakeup=wakeup))
    try:
        await until(lambda: store.rounds == 3)  # three rounds at once: the first two had more
        await asyncio.sleep(0.1)
        assert store.rounds == 3
        wakeup.ring()  # this process recorded something
        await until(lambda: store.rounds == 4)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_cancelling_stops_the_loop():
    task = asyncio.create_task(run_rounds(in_thread(Store(0).work), name="x", interval=60))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
