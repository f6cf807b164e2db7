"""What coaching shows: one plan, the lists of plans and overdue check-ins a caller may
see (`coaching.access` says which), and the counts of followed trajectories."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from eventsourcing.utils import get_topic

from contracts.following import read_log
from coaching.domain import FollowedTrajectory
from coaching.index import PlanIndex
from coaching.usecases.stored import answers_about, plan_of
from coaching.views import PlanSummary, describe, overdue_items, summarise

Visible = Callable[[PlanSummary], bool]


class PlanQueries:
    def __init__(self, store: Any, index: PlanIndex) -> None:
        self.store, self.index = store, index

    def plan(self, plan_id: uuid.UUID) -> dict[str, Any]:
        plan = plan_of(self.store.repository, plan_id)
        return describe(plan, answers_about(self.store.repository, plan))

    def summary(self, plan_id: uuid.UUID) -> PlanSummary:
        return summarise(plan_of(self.store.repository, plan_id))

    def plans(self, visible: Visible, *, trajectory_id: uuid.UUID | None = None,
              status: str | None = None) -> list[dict[str, Any]]:
        found = [s for s in self.index.summaries() if visible(s)
                 and (trajectory_id is None or s.trajectory_id == trajectory_id)
                 and (status is None or (s.completed == (status == "completed")))]
        return [s.as_dict() for s in sorted(found, key=lambda s: (s.job_starts_on, str(s.plan_id)))]

    def overdue_check_ins(self, visible: Visible) -> list[dict[str, Any]]:
        items = [item for s in self.index.summaries() if visible(s) for item in overdue_items(s)]
        return sorted(items, key=lambda i: (i["due_on"], i["plan_id"], i["check_in"]))

    def followed_per_municipality(self) -> dict[str, int]:
        """How many trajectories coaching follows, per municipality (read from its log)."""
        followed = read_log(self.store, topics=[get_topic(FollowedTrajectory.Followed)])
        return dict(Counter(self.store.mapper.to_domain_event(n).municipality for n in followed))
