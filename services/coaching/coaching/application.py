"""Coaching's application: its event store, the inbox policy (a plan for every placement,
the registry's answers kept), and one place for callers to reach the use cases
(`coaching.usecases`). Methods take ids and primitives and return plain dicts or an
`Answer`, never aggregates."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent

from contracts.envelope import Attributes
from contracts.events import (
    BenefitObserved, EmploymentObserved, Event, PlacedInJob, ProviderAssigned, TrajectoryOpened,
)
from contracts.idempotency import Answer
from contracts.service import ServiceApplication
from coaching.clock import Clock, today_in_amsterdam
from coaching.coaches import municipality_coach, provider_coach, provider_slug
from coaching.domain import (
    CoachingPlan, FollowedTrajectory, RegistryAnswers, answers_id, is_aftercare, plan_id,
)
from coaching.index import PlanIndex
from coaching.integration import ensure_translatable
from coaching.policy import Policies
from coaching.schedule import schedule_for
from coaching.usecases.plans import PlanCommands
from coaching.usecases.reading import PlanQueries, Visible
from coaching.usecases.stored import answers_of
from coaching.views import PlanSummary


class UnknownTrajectory(LookupError):
    """An event about a trajectory coaching never saw opened (it goes to the dead letters)."""


class CoachingApplication(ServiceApplication):
    """Starts a plan for every placement and follows it through its year."""

    name = "coaching"
    group = "coaching"
    consumes = (TrajectoryOpened, ProviderAssigned, PlacedInJob, EmploymentObserved, BenefitObserved)

    def __init__(self, env: dict[str, str] | None = None, *, policies: Policies | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__(env)
        self.policies = policies or Policies()
        self.clock = clock or today_in_amsterdam
        self.index = PlanIndex(self)
        self.commands = PlanCommands(self, clock=self.clock)
        self.queries = PlanQueries(self, self.index)

    # --- from Kafka -------------------------------------------------------------------

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        self._follow(event, processing_event)
        ensure_translatable(processing_event.events)

    def _follow(self, event: Event, processing_event: ProcessingEvent[uuid.UUID]) -> None:
        if isinstance(event, TrajectoryOpened):
            processing_event.collect_events(FollowedTrajectory(
                event.trajectory_id, municipality=event.municipality,
                programme=event.programme, opened_on=event.opened_on,
            ))
        elif isinstance(event, ProviderAssigned) and is_aftercare(event.discipline):
            self._aftercare_assigned(event, processing_event)
        elif isinstance(event, PlacedInJob):
            self._placed(event, processing_event)
        elif isinstance(event, (EmploymentObserved, BenefitObserved)) and event.cohort == "placed":
            self._observed(event, processing_event)
        # The unknown-destination cohort's answers are about people coaching never had.

    def _aftercare_assigned(self, event: ProviderAssigned,
                            processing_event: ProcessingEvent[uuid.UUID]) -> None:
        try:
            followed: FollowedTrajectory = self.repository.get(event.trajectory_id)
        except AggregateNotFoundError:
            raise UnknownTrajectory("aftercare assigned on a trajectory never opened") from None
        provider = provider_slug(event.provider)
        followed.assign_aftercare(provider, event.assigned_on)
        processing_event.collect_events(followed)
        plan = self._latest_plan(event.trajectory_id)
        if plan is not None:  # given the aftercare after the plan started: the provider takes over
            plan.change_coach(provider_coach(provider), event.assigned_on)
            processing_event.collect_events(plan)

    def _placed(self, event: PlacedInJob, processing_event: ProcessingEvent[uuid.UUID]) -> None:
        job = dict(employer=event.employer, hours_per_week=event.hours_per_week,
                   contract_type=event.contract_type)
        latest = self._latest_plan(event.trajectory_id)
        if latest is not None and not latest.completed and event.starts_on < latest.ends_on:
            # Placed again within the year (after a reopened trajectory): the same plan goes on.
            if latest.place_again(**job, starts_on=event.starts_on):
                processing_event.collect_events(latest)
            return
        policy = self.policies.of(event.municipality)
        schedule = schedule_for(event.starts_on, policy.check_in_weeks)
        number = 1 if latest is None else latest.number + 1
        processing_event.collect_events(CoachingPlan(
            plan_id(event.trajectory_id, number), trajectory_id=event.trajectory_id,
            municipality=event.municipality, number=number,
            coach_id=self._coach_for(event.trajectory_id, event.municipality), **job,
            job_starts_on=event.starts_on, check_ins_due=list(schedule.check_ins_due),
            six_month_on=schedule.six_month_on, ends_on=schedule.ends_on,
            grace_days=policy.grace_days,
        ))

    def _observed(self, event: EmploymentObserved | BenefitObserved,
                  processing_event: ProcessingEvent[uuid.UUID]) -> None:
        """Keeps a registry answer about a placement with the trajectory's answers; the
        plan of that placement shows it. Kept also when the placement has not reached
        coaching yet: intake's topic and trajectory's are read side by side."""
        answers = answers_of(self.repository, event.trajectory_id) or RegistryAnswers(
            answers_id(event.trajectory_id), trajectory_id=event.trajectory_id,
            municipality=event.municipality)
        when = dict(observation_id=event.observation_id, point=event.point,
                    months_after=event.months_after, reference_date=event.reference_date,
                    observed_on=event.observed_on, period_start=event.period_start,
                    period_end=event.period_end)
        if isinstance(event, EmploymentObserved):
            kept = answers.observe_employment(**when, employed=event.employed, employer_id=event.employer_id,
                                              hours_per_week=event.hours_per_week)
        else:
            kept = answers.observe_benefit(**when, on_benefit=event.on_benefit, benefit_kind=event.benefit_kind)
        if kept:
            processing_event.collect_events(answers)

    def _coach_for(self, trajectory_id: uuid.UUID, municipality: str) -> str:
        """The provider holding the aftercare, else the municipality's own job coach."""
        try:
            followed: FollowedTrajectory = self.repository.get(trajectory_id)
        except AggregateNotFoundError:
            return municipality_coach(municipality)
        if followed.aftercare_provider:
            return provider_coach(followed.aftercare_provider)
        return municipality_coach(municipality)


    def _latest_plan(self, trajectory_id: uuid.UUID) -> CoachingPlan | None:
        latest, number = None, 1
        while True:
            try:
                latest = self.repository.get(plan_id(trajectory_id, number))
            except AggregateNotFoundError:
                return latest
            number += 1

    # --- commands (`coaching.usecases.plans`) ------------------------------------------

    def record_check_in(self, plan_id: uuid.UUID, **check_in: Any) -> Answer:
        return self.commands.record_check_in(plan_id, **check_in)

    def record_job_loss(self, plan_id: uuid.UUID, **job_loss: Any) -> Answer:
        return self.commands.record_job_loss(plan_id, **job_loss)

    def record_placement(self, plan_id: uuid.UUID, **job: Any) -> Answer:
        return self.commands.record_placement(plan_id, **job)

    def request_reopen(self, plan_id: uuid.UUID, **request: Any) -> Answer:
        return self.commands.request_reopen(plan_id, **request)

    def record_follow_up(self, plan_id: uuid.UUID, **contact: Any) -> Answer:
        return self.commands.record_follow_up(plan_id, **contact)

    def record_employer_confirmation(self, plan_id: uuid.UUID, **confirmation: Any) -> Answer:
        return self.commands.record_employer_confirmation(plan_id, **confirmation)

    # --- time (the scheduler) ----------------------------------------------------------

    def due_plans(self, today: dt.date) -> list[uuid.UUID]:
        return self.index.due(today)

    def act_until(self, plan_id: uuid.UUID, today: dt.date) -> int:
        return self.commands.act_until(plan_id, today)

    # --- queries (`coaching.usecases.reading`) -----------------------------------------

    def plan(self, plan_id: uuid.UUID) -> dict[str, Any]:
        return self.queries.plan(plan_id)

    def summary(self, plan_id: uuid.UUID) -> PlanSummary:
        return self.queries.summary(plan_id)

    def plans(self, visible: Visible, **filters: Any) -> list[dict[str, Any]]:
        return self.queries.plans(visible, **filters)

    def overdue_check_ins(self, visible: Visible) -> list[dict[str, Any]]:
        return self.queries.overdue_check_ins(visible)

    def followed_per_municipality(self) -> dict[str, int]:
        return self.queries.followed_per_municipality()
