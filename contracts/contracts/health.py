"""Readiness: a service process that cannot make progress says so on `/health`.

A component that is stuck (an inbox waiting for its store or its dead-letter topic) marks
itself stalled with a reason, and clears it once it moves again. While anything is
stalled, `/health` answers 503 with a problem document naming the reasons (error class
names and topic names only: never a payload, never personal data). The route and the
readiness of a FastAPI app's process are in `contracts.web.health`.
"""

from __future__ import annotations

import time


class Readiness:
    """What keeps one service process from being ready: component -> reason."""

    def __init__(self) -> None:
        self._stalled: dict[str, tuple[str, float]] = {}

    def stalled(self, component: str, reason: str) -> None:
        since = self._stalled.get(component, (reason, time.monotonic()))[1]
        self._stalled[component] = (reason, since)

    def progressing(self, component: str) -> None:
        self._stalled.pop(component, None)

    @property
    def reasons(self) -> dict[str, str]:
        now = time.monotonic()
        return {component: f"{reason}, for {now - since:.0f} s"
                for component, (reason, since) in sorted(self._stalled.items())}


def backoff(attempt: int, *, first: float = 0.5, cap: float = 10.0) -> float:
    """Seconds to wait before attempt `attempt + 1`: doubling from `first`, at most `cap`."""
    return min(cap, first * 2 ** max(0, attempt - 1))
