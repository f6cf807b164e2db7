"""The scheduler: turns due dates into events (overdue check-ins, the six-month point, the
end of the coaching year).

It keeps no state of its own. Each run asks the plans what fell due up to today and was
not recorded yet, so running it twice, in two processes at once, or again after a crash
records each due event once and catches up on whatever a stopped scheduler missed.
Nothing is sent from here: what it records reaches Kafka through the outbox relay, which
publishes each stored event once (with the same CloudEvent id if ever again), and a
replay of the history rebuilds the plans without recording anything new.
"""

from __future__ import annotations

import logging

from contracts.health import Readiness
from contracts.rounds import in_thread, run_rounds
from coaching.application import CoachingApplication
from coaching.clock import Clock

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, app: CoachingApplication, *, clock: Clock | None = None,
                 interval_seconds: float = 60.0, readiness: Readiness | None = None) -> None:
        self.app = app
        self.clock = clock or app.clock
        self.interval_seconds = interval_seconds
        self.readiness = readiness

    def run_once(self) -> int:
        """One pass over the plans with something due; returns how many events it recorded."""
        today = self.clock()
        recorded = 0
        for plan_id in self.app.due_plans(today):
            try:
                recorded += self.app.act_until(plan_id, today)
            except Exception:  # one plan that cannot be handled must not stop the others
                log.exception("coaching_scheduler_plan_failed", extra={"plan_id": str(plan_id)})
        if recorded:
            log.info("coaching_scheduler_recorded", extra={"events": recorded, "today": today.isoformat()})
        return recorded

    async def run(self) -> None:
        """Runs until cancelled; a store that is away is waited for, not given up on."""
        await run_rounds(in_thread(self.run_once), name="coaching_scheduler", interval=self.interval_seconds,
                         readiness=self.readiness)
