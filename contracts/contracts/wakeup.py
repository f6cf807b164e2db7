"""A wake-up call from a store's writers to the loops that follow its log.

The outbox relay, the assignment desk and the webhook dispatcher look in the store for
what was recorded since their position. Looking often costs CPU when nothing happens;
looking seldom makes every event wait. So the application rings after each commit it
made, and the loops wait for that with a long timeout: what another process (a replica
on the same store) records is still found by the slower look.
"""

from __future__ import annotations

import asyncio
import threading


class Wakeup:
    """Rung from any thread (the store is written from worker threads); each follower
    waits on its own `Waiter`, so one ring wakes every follower."""

    def __init__(self) -> None:
        self._waiters: set[Waiter] = set()
        self._lock = threading.Lock()

    def waiter(self) -> Waiter:
        """A waiter on the running event loop; close it when the follower stops."""
        waiter = Waiter(self, asyncio.get_running_loop())
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def ring(self) -> None:
        with self._lock:
            waiters = tuple(self._waiters)
        for waiter in waiters:
            waiter.ring()

    def _forget(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.discard(waiter)


class Waiter:
    """One follower's side of a `Wakeup`: `wait` returns when rung or after the timeout."""

    def __init__(self, wakeup: Wakeup, loop: asyncio.AbstractEventLoop) -> None:
        self._wakeup = wakeup
        self._loop = loop
        self._rung = asyncio.Event()

    def ring(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._rung.set)
        except RuntimeError:  # its loop is closed: the follower is gone
            self.close()

    async def wait(self, timeout: float, *, settle: float = 0.0) -> bool:
        """Whether it was rung (since the last wait) within `timeout` seconds. A ring
        while the follower worked is kept, so the next wait returns at once. With
        `settle`, a rung waiter waits that much longer, so that a burst of commits is
        followed up in one round, not one round each."""
        try:
            await asyncio.wait_for(self._rung.wait(), timeout)
        except TimeoutError:
            return False
        if settle > 0:
            await asyncio.sleep(settle)
        self._rung.clear()  # before the follower looks: a later commit rings again
        return True

    def close(self) -> None:
        self._wakeup._forget(self)

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
