"""One rule for every command of every service: decided again on a version conflict.

A command loads aggregates, decides, and saves them with optimistic concurrency: the
store takes version n+1 of an aggregate once, and a second writer that decided on version
n (another request, the inbox applying a record, a timer, another process) gets
eventsourcing's `IntegrityError` ("UNIQUE constraint failed: stored_events…"). That is
not an error of the caller: the whole command — load, decide, save — runs again on what
the winner recorded, after a short jittered pause so that writers which met once do not
meet again in step. A command that still loses after `ATTEMPTS` raises `Busy`, a 503
problem with `Retry-After`, never a 500.

A domain refusal (a 409 naming the state) is raised by the command itself and is not
retried; neither is anything else. Idempotency replays belong inside the command, so that
a request that lost to its own retry answers with the first answer.

The inbox applies consumed records by the same rule (`contracts.service`, there with its
own check whether the record was applied by the winner).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ParamSpec, TypeVar

from eventsourcing.persistence import IntegrityError

from contracts.problems import RETRY_AFTER, Busy  # noqa: F401  (Busy: what a command ends in)

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

ATTEMPTS = 8  # how often a command is decided in all before it gives up
FIRST_PAUSE = 0.005  # seconds: the first pause is up to this, doubling per attempt (full jitter)
MAX_PAUSE = 0.25  # seconds: no single pause is longer


def pause(attempt: int) -> float:
    """How long to wait after losing `attempt` (0-based) times: full jitter, bounded."""
    return random.uniform(0, min(MAX_PAUSE, FIRST_PAUSE * 2 ** attempt))


def retry_on_conflict(command: Callable[[], T], *, what: str = "record", attempts: int = ATTEMPTS,
                      lock: AbstractContextManager[Any] | threading.RLock | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Runs `command` (which loads, decides and saves) until it is not beaten to the store
    by another writer; `Busy` after `attempts`. With `lock`, each attempt runs under it
    (and the pause between attempts outside it)."""
    guard = lock if lock is not None else nullcontext()
    for attempt in range(attempts):
        try:
            with guard:  # type: ignore[union-attr]
                return command()
        except IntegrityError:
            if attempt == attempts - 1:
                break
            log.info("command_conflict", extra={"what": what, "attempt": attempt + 1})
            sleep(pause(attempt))
    log.warning("command_busy", extra={"what": what, "attempts": attempts})
    raise Busy(what)


def retries_on_conflict(what: str = "record") -> Callable[[Callable[P, T]], Callable[P, T]]:
    """The rule as a decorator of a use case: the whole method is the command."""

    def decorate(method: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(method)
        def command(*args: P.args, **kwargs: P.kwargs) -> T:
            return retry_on_conflict(lambda: method(*args, **kwargs), what=what)

        command.__wrapped_by_retry__ = True  # type: ignore[attr-defined]
        return command

    return decorate
