"""The one place where coaching's domain events become integration events.

Internal events (following a trajectory, learning its aftercare provider) translate to
nothing; every plan event translates to one event of the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from contracts.events import (
    CheckInOverdue, CheckInRecorded, CoachChanged, CoachingCompleted, CoachingStarted,
    EmploymentConfirmedByEmployer, Event, FollowUpContactRecorded, JobLost, PlacedAgain, SixMonthPointReached,
    TrajectoryReopenRequested,
)
from coaching.domain import CoachingPlan


def integration_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """(municipality, integration event) for one stored domain event."""
    if not isinstance(domain_event, CoachingPlan.Event):
        return []
    e = domain_event
    common = {"trajectory_id": e.trajectory_id, "plan_id": e.originator_id}
    published: Event
    if isinstance(e, CoachingPlan.Started):
        published = CoachingStarted(
            **common, municipality=e.municipality, coach_id=e.coach_id,
            job_starts_on=e.job_starts_on, ends_on=e.ends_on, check_ins_due=tuple(e.check_ins_due),
            employer=e.employer, hours_per_week=e.hours_per_week, contract_type=e.contract_type,
            six_month_on=e.six_month_on, grace_days=e.grace_days,
        )
    elif isinstance(e, CoachingPlan.CheckInRecorded):
        published = CheckInRecorded(
            **common, check_in=e.check_in, held_on=e.held_on, contact_made=e.contact_made,
            still_employed=e.still_employed, hours_per_week=e.hours_per_week,
            support=tuple(e.support), issues_raised=tuple(e.issues_raised),
            next_step=e.next_step, recorded_by=e.recorded_by,
        )
    elif isinstance(e, CoachingPlan.CheckInOverdue):
        published = CheckInOverdue(**common, check_in=e.check_in, due_on=e.due_on)
    elif isinstance(e, CoachingPlan.JobLost):
        published = JobLost(**common, lost_on=e.lost_on, reason=e.reason)
    elif isinstance(e, CoachingPlan.PlacedAgain):
        published = PlacedAgain(
            **common, starts_on=e.starts_on, employer=e.employer,
            hours_per_week=e.hours_per_week, contract_type=e.contract_type,
            same_employer=e.same_employer, ends_on=e.ends_on,
        )
    elif isinstance(e, CoachingPlan.CoachChanged):
        published = CoachChanged(**common, coach_id=e.coach_id, changed_on=e.changed_on)
    elif isinstance(e, CoachingPlan.ReopenRequested):
        published = TrajectoryReopenRequested(
            **common, request_id=e.request_id, municipality=e.municipality,
            requested_on=e.requested_on, reason=e.reason, requested_by=e.requested_by,
            employed=e.employed,
        )
    elif isinstance(e, CoachingPlan.SixMonthPointReached):
        published = SixMonthPointReached(**common, measured_on=e.measured_on, employed=e.employed,
                                         same_employer=e.same_employer, **_proven(e))
    elif isinstance(e, CoachingPlan.Completed):
        published = CoachingCompleted(**common, completed_on=e.completed_on,
                                      employed_at_end=e.employed_at_end,
                                      same_employer=e.same_employer, **_proven(e))
    elif isinstance(e, CoachingPlan.FollowUpRecorded):
        published = FollowUpContactRecorded(
            **common, contacted_on=e.contacted_on, contact_made=e.contact_made,
            employed=e.employed, same_employer=e.same_employer,
        )
    elif isinstance(e, CoachingPlan.ConfirmedByEmployer):
        published = EmploymentConfirmedByEmployer(
            **common, municipality=e.municipality, confirmed_on=e.confirmed_on,
            employed=e.employed, same_employer=e.same_employer,
            hours_per_week=e.hours_per_week, recorded_by=e.recorded_by,
        )
    else:
        return []  # registry answers are intake's events: coaching keeps them, never republishes
    return [(e.municipality, published)]


def _proven(e: Any) -> dict[str, Any]:
    # Events stored before coaching worked out a point's result have none of these.
    return {name: getattr(e, name, None) for name in ("result", "evidence", "evidence_on")}


def ensure_translatable(events: Iterable[Any]) -> None:
    """Translates new events before they are stored, raising what the translation raises:
    one that could not be published would stop the outbox relay for every event after it,
    so it must never be recorded (the command fails instead, or the inbox dead-letters the
    record)."""
    for domain_event in events:
        integration_events(domain_event)
