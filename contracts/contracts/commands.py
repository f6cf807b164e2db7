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

The inbox applies consumed records by the same rule (`contracts.service`, with `settled`:
its own check whether the record was applied by the winner).
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from eventsourcing.persistence import IntegrityError

from contracts.problems import RETRY_AFTER, Busy  # noqa: F401  (Busy: what a command ends in)

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

@dataclass(frozen=True)
class ConflictPolicy:
    """How often a command is decided in all before it gives up, and the pauses between:
    full jitter from `first_pause` seconds, doubling per loss, no pause above `max_pause`.
    An installation sets it with `TWEESPOOR_CONFLICT_ATTEMPTS`, `_FIRST_PAUSE` and
    `_MAX_PAUSE` (seconds)."""

    attempts: int = 8
    first_pause: float = 0.005
    max_pause: float = 0.25

    def pause(self, attempt: int) -> float:
        """How long to wait after losing `attempt` (0-based) times."""
        return random.uniform(0, min(self.max_pause, self.first_pause * 2 ** attempt))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConflictPolicy:
        default = cls()
        return cls(attempts=max(1, int(env.get("TWEESPOOR_CONFLICT_ATTEMPTS", default.attempts))),
                   first_pause=float(env.get("TWEESPOOR_CONFLICT_FIRST_PAUSE", default.first_pause)),
                   max_pause=float(env.get("TWEESPOOR_CONFLICT_MAX_PAUSE", default.max_pause)))


POLICY = ConflictPolicy.from_env(os.environ)
ATTEMPTS = POLICY.attempts


def pause(attempt: int) -> float:
    return POLICY.pause(attempt)


def retry_on_conflict(command: Callable[[], T], *, what: str = "record", attempts: int | None = None,
                      lock: AbstractContextManager[Any] | threading.RLock | None = None,
                      settled: Callable[[], T | None] | None = None, exhausted: str = "busy",
                      policy: ConflictPolicy | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Runs `command` (which loads, decides and saves) until it is not beaten to the store
    by another writer, by `policy` (the installation's unless given; `attempts` overrides
    its count). With `lock`, each attempt runs under it (the pause outside it). After each
    loss, `settled` may say the winner did the command's work already (the inbox: another
    member applied the record): its answer is returned. When every attempt lost: `Busy`,
    or with `exhausted="raise"` the store's IntegrityError itself."""
    rule = policy or POLICY
    tries = attempts if attempts is not None else rule.attempts
    guard = lock if lock is not None else nullcontext()
    for attempt in range(tries):
        try:
            with guard:  # type: ignore[union-attr]
                return command()
        except IntegrityError:
            if settled is not None and (answer := settled()) is not None:
                return answer
            if attempt == tries - 1:
                if exhausted == "raise":
                    raise
                break
            log.info("command_conflict", extra={"what": what, "attempt": attempt + 1})
            sleep(rule.pause(attempt))
    log.warning("command_busy", extra={"what": what, "attempts": tries})
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
