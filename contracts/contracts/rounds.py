"""The one loop that drives a service's own background work in rounds: the assignment
desk, the webhook sender, the coaching scheduler, intake's LBU timer and retention.

A round does what is due and says whether it caught up. Caught up, the loop waits for the
interval (or, given the process's `Wakeup`, until this process records something); not
caught up, it goes on at once. A round that fails -- the store away, most often -- never
stops the service: it is logged as `<name>_failed` (the error's class, never its text,
which may quote a row), turns the process's readiness red under `name` and is tried again
after a pause; the first round that succeeds clears it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from contracts.health import Readiness
from contracts.wakeup import Wakeup

log = logging.getLogger(__name__)

Round = Callable[[], Awaitable[bool]]  # one round; True when it caught up


async def run_rounds(round_: Round, *, name: str, interval: float, wakeup: Wakeup | None = None,
                     settle: float = 0.0, error_pause: float = 1.0,
                     readiness: Readiness | None = None) -> None:
    """Runs `round_` until cancelled (see the module)."""
    waiter = wakeup.waiter() if wakeup is not None else None
    try:
        while True:
            try:
                caught_up = await round_()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(f"{name}_failed", extra={"error": type(error).__name__})
                if readiness is not None:
                    readiness.stalled(name, f"failing ({type(error).__name__})")
                await asyncio.sleep(error_pause)
                continue
            if readiness is not None:
                readiness.progressing(name)
            if not caught_up:
                continue
            if waiter is not None:
                await waiter.wait(interval, settle=settle)
            else:
                await asyncio.sleep(interval)
    finally:
        if waiter is not None:
            waiter.close()


def in_thread(work: Callable[[], object], caught_up: Callable[[object], bool] = lambda _: True) -> Round:
    """A round made of blocking work (the store's drivers block), run off the event loop;
    `caught_up` tells from its result whether it did all there was."""

    async def round_() -> bool:
        return caught_up(await asyncio.to_thread(work))

    return round_
