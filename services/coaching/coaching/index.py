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

from contracts.following import LogView
from coaching.domain import PLAN_EVENTS
from coaching.views import PlanSummary, summarise


class PlanIndex:
    def __init__(self, app: Any) -> None:
        self._app = app
        self._plans: dict[uuid.UUID, PlanSummary] = {}
        self._changed: set[uuid.UUID] = set()
        self._view = LogView(app, PLAN_EVENTS, lambda event: self._changed.add(event.originator_id))
        self._lock = threading.Lock()  # the API's threads and the scheduler share it

    def summaries(self) -> list[PlanSummary]:
        self.catch_up()
        return list(self._plans.values())

    def due(self, today: dt.date) -> list[uuid.UUID]:
        """Plans with something to record on or before `today`."""
        return [s.plan_id for s in self.summaries()
                if s.next_action_on is not None and s.next_action_on <= today]

    def catch_up(self) -> None:
        """Summarises again each plan with events since the last look (once, however many)."""
        with self._lock:
            self._view.catch_up()
            for plan_id in sorted(self._changed):
                self._plans[plan_id] = summarise(self._app.repository.get(plan_id))
            self._changed.clear()
