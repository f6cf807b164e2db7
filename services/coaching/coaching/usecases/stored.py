"""Loading what the use cases and the inbox share: a plan, and the registry's answers about
a trajectory."""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from contracts.problems import NotFound
from coaching.domain import CoachingPlan, RegistryAnswer, RegistryAnswers, answers_id


def plan_of(repository: Any, plan_id: uuid.UUID) -> CoachingPlan:
    """The plan; NotFound when there is none with this id."""
    try:
        plan = repository.get(plan_id)
    except AggregateNotFoundError:
        raise NotFound("Plan") from None
    if not isinstance(plan, CoachingPlan):
        raise NotFound("Plan")
    return plan


def answers_of(repository: Any, trajectory_id: uuid.UUID) -> RegistryAnswers | None:
    try:
        return repository.get(answers_id(trajectory_id))
    except AggregateNotFoundError:
        return None


def answers_about(repository: Any, plan: CoachingPlan) -> list[RegistryAnswer]:
    """The registry's answers about this plan's placement."""
    found = answers_of(repository, plan.trajectory_id)
    return plan.answers_about(found.answers) if found else []
