"""Every plan in one glance: the scheduler's agenda and the lists' source.

Kept in memory and brought up to date from the store's notification log before each
use, so every process that shares a store sees the same plans, and a restarted process
rebuilds it from the log (nothing here has to survive a crash).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from eventsourcing.utils import get_topic

from coaching.domain import PLAN_EVENTS
from coaching.views import PlanSummary, summarise

PAGE = 500


class PlanIndex:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._topics = [get_topic(cls) for cls in PLAN_EVENTS]
        self._position: int | None = None
        self._plans: dict[uuid.UUID, PlanSummary] = {}
        self._lock = threading.Lock()  # the API's threads and the scheduler share it

    def summaries(self) -> list[PlanSummary]:
        self.catch_up()
        return list(self._plans.values())

    def due(self, today: dt.date) -> list[uuid.UUID]:
        """Plans with something to record on or before `today`."""
        return [s.plan_id for s in self.summaries()
                if s.next_action_on is not None and s.next_action_on <= today]

    def catch_up(self) -> None:
        with self._lock:
            recorder = self._app.recorder
            while page := recorder.select_notifications(
                self._position, PAGE, topics=self._topics, inclusive_of_start=False
            ):
                for plan_id in dict.fromkeys(n.originator_id for n in page):
                    self._plans[plan_id] = summarise(self._app.repository.get(plan_id))
                self._position = page[-1].id
