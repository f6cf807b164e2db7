"""Coaching's use cases: the service layer between the API, the inbox, the scheduler and
the plans. Methods take ids and primitives and return plain dicts, never aggregates."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable

from typing import Any

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.utils import get_topic

from contracts.commands import Busy, retry_on_conflict
from contracts.envelope import Attributes
from contracts.events import (
    BenefitObserved, EmploymentObserved, Event, PlacedInJob, ProviderAssigned, TrajectoryOpened,
)
from contracts.idempotency import IdempotencyRecord, RequestKey, replay
from contracts.problems import Problem
from contracts.service import ServiceApplication
from coaching.clock import Clock, today_in_amsterdam
from coaching.coaches import municipality_coach, provider_coach, provider_slug
from coaching.domain import (
    CoachingPlan, FollowedTrajectory, InvalidFact, PlanConflict, RegistryAnswer, RegistryAnswers,
    answers_id, is_aftercare, plan_id,
)
from coaching.index import PlanIndex
from coaching.integration import integration_events
from coaching.policy import Policies
from coaching.schedule import schedule_for
from coaching.views import PlanSummary, describe, overdue_items, summarise

# A command is decided again when another writer (the scheduler, the inbox, a second
# request) changed the same plan in between: optimistic concurrency, not locks, by the
# rule every service follows (`contracts.commands`).
MAX_DAYS_AHEAD = 92  # a new job may be recorded before it starts, but not months ahead

Visible = Callable[[PlanSummary], bool]


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

    # --- from Kafka -------------------------------------------------------------------

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        self._follow(event, processing_event)
        publishable(processing_event.events)

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
        answers = self._answers(event.trajectory_id) or RegistryAnswers(
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

    def _answers(self, trajectory_id: uuid.UUID) -> RegistryAnswers | None:
        try:
            return self.repository.get(answers_id(trajectory_id))
        except AggregateNotFoundError:
            return None

    def _answers_about(self, plan: CoachingPlan) -> list[RegistryAnswer]:
        found = self._answers(plan.trajectory_id)
        return plan.answers_about(found.answers) if found else []

    def _coach_for(self, trajectory_id: uuid.UUID, municipality: str) -> str:
        """The provider holding the aftercare, else the municipality's own job coach."""
        try:
            followed: FollowedTrajectory = self.repository.get(trajectory_id)
        except AggregateNotFoundError:
            return municipality_coach(municipality)
        if followed.aftercare_provider:
            return provider_coach(followed.aftercare_provider)
        return municipality_coach(municipality)


    # --- commands ---------------------------------------------------------------------

    def record_check_in(self, plan_id: uuid.UUID, *, recorded_by: str, keyed: RequestKey | None = None,
                        status: int = 201, **facts: Any) -> tuple[int, dict[str, Any]]:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            number = plan.record_check_in(**facts, recorded_by=recorded_by, today=self.clock())
            return {"plan_id": str(plan.id), "check_in": number}
        return self._change(plan_id, command, keyed, status)

    def record_job_loss(self, plan_id: uuid.UUID, *, lost_on: dt.date, reason: str,
                        keyed: RequestKey | None = None, status: int = 201) -> tuple[int, dict[str, Any]]:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            plan.lose_job(lost_on=lost_on, reason=reason, today=self.clock())
            return {"plan_id": str(plan.id), "lost_on": lost_on.isoformat()}
        return self._change(plan_id, command, keyed, status)

    def record_placement(self, plan_id: uuid.UUID, *, keyed: RequestKey | None = None,
                         status: int = 201, **job: Any) -> tuple[int, dict[str, Any]]:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            if job["starts_on"] > self.clock() + dt.timedelta(days=MAX_DAYS_AHEAD):
                raise InvalidFact("starts_on", f"must be within {MAX_DAYS_AHEAD} days from today")
            recorded = plan.place_again(**job)
            return {"plan_id": str(plan.id), "starts_on": job["starts_on"].isoformat(),
                    "recorded": recorded, "ends_on": plan.ends_on.isoformat()}
        return self._change(plan_id, command, keyed, status)

    def request_reopen(self, plan_id: uuid.UUID, *, reason: str, requested_on: dt.date,
                       requested_by: str, keyed: RequestKey | None = None,
                       status: int = 201) -> tuple[int, dict[str, Any]]:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            request_id = plan.request_reopen(reason=reason, requested_on=requested_on,
                                             requested_by=requested_by, today=self.clock())
            return {"plan_id": str(plan.id), "request_id": str(request_id)}
        return self._change(plan_id, command, keyed, status)

    def record_follow_up(self, plan_id: uuid.UUID, *, keyed: RequestKey | None = None,
                         status: int = 201, **facts: Any) -> tuple[int, dict[str, Any]]:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            plan.record_follow_up(**facts, today=self.clock())
            return {"plan_id": str(plan.id), "contacted_on": facts["contacted_on"].isoformat()}
        return self._change(plan_id, command, keyed, status)

    def record_employer_confirmation(self, plan_id: uuid.UUID, *, recorded_by: str | None,
                                     keyed: RequestKey | None = None, status: int = 201,
                                     **facts: Any) -> tuple[int, dict[str, Any]]:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            recorded = plan.confirm_by_employer(**facts, recorded_by=recorded_by, today=self.clock())
            return {"plan_id": str(plan.id), "confirmed_on": facts["confirmed_on"].isoformat(),
                    "recorded": recorded}
        return self._change(plan_id, command, keyed, status)

    def _change(self, plan_id: uuid.UUID, command: Callable[[CoachingPlan], dict[str, Any]],
                keyed: RequestKey | None, status: int) -> tuple[int, dict[str, Any]]:
        def attempt() -> tuple[int, dict[str, Any]]:
            if keyed and (first := replay(self, keyed)):
                return first
            plan = self._plan(plan_id)
            try:
                body = command(plan)
            except PlanConflict as conflict:
                raise Problem(409, "Conflict", str(conflict)) from None
            except InvalidFact as invalid:
                raise Problem(422, "Invalid request", "One or more fields are invalid.",
                              errors=[{"field": invalid.field, "reason": invalid.reason}]) from None
            publishable(plan.pending_events)
            records = [IdempotencyRecord(keyed.scope, keyed.key, keyed.request, status, body)] if keyed else []
            self.save(plan, *records)
            return status, body

        return retry_on_conflict(attempt, what="plan")

    # --- time -------------------------------------------------------------------------

    def due_plans(self, today: dt.date) -> list[uuid.UUID]:
        return self.index.due(today)

    def act_until(self, plan_id: uuid.UUID, today: dt.date) -> int:
        """Records what fell due on one plan up to `today`; returns how many events.
        Run twice, or by two processes at once, it records each due event once: both
        read the same version, the store takes the first to write the next one, and the
        other finds, on looking again, that nothing is left to do."""
        def attempt() -> int:
            plan = self._plan(plan_id)
            emitted = plan.act_until(today, self._answers_about(plan))
            if emitted:
                publishable(plan.pending_events)
                self.save(plan)
            return emitted

        try:
            return retry_on_conflict(attempt, what="plan")
        except Busy:
            return 0  # still contended: the next run will see what is left

    # --- queries ----------------------------------------------------------------------

    def plan(self, plan_id: uuid.UUID) -> dict[str, Any]:
        plan = self._plan(plan_id)
        return describe(plan, self._answers_about(plan))

    def summary(self, plan_id: uuid.UUID) -> PlanSummary:
        return summarise(self._plan(plan_id))

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
        counts: Counter[str] = Counter()
        topic = get_topic(FollowedTrajectory.Followed)
        position = None
        while page := self.recorder.select_notifications(
            position, 1000, topics=[topic], inclusive_of_start=False
        ):
            for notification in page:
                counts[self.mapper.to_domain_event(notification).municipality] += 1
            position = page[-1].id
        return dict(counts)

    def _plan(self, plan_id: uuid.UUID) -> CoachingPlan:
        try:
            plan = self.repository.get(plan_id)
        except AggregateNotFoundError:
            raise Problem(404, "Plan not found") from None
        if not isinstance(plan, CoachingPlan):
            raise Problem(404, "Plan not found")
        return plan

    def _latest_plan(self, trajectory_id: uuid.UUID) -> CoachingPlan | None:
        latest, number = None, 1
        while True:
            try:
                latest = self.repository.get(plan_id(trajectory_id, number))
            except AggregateNotFoundError:
                return latest
            number += 1


def publishable(events: Any) -> None:
    """Translates new events before they are stored: one that could not be published
    would stop the outbox relay for every event after it, so it must never be recorded
    (the command fails instead, or the inbox dead-letters the record)."""
    for domain_event in events:
        integration_events(domain_event)
