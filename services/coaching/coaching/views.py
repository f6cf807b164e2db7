"""What the API shows of a plan: plain dicts and a small summary, made from the aggregate."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts.outcomes import POINTS, Outcome
from coaching.domain import CoachingPlan, RegistryAnswer


@dataclass(frozen=True)
class PlanSummary:
    """Enough of a plan to decide who sees it, what is overdue and when it is next due."""

    plan_id: uuid.UUID
    trajectory_id: uuid.UUID
    municipality: str
    coach_id: str
    completed: bool
    job_starts_on: dt.date
    ends_on: dt.date
    next_action_on: dt.date | None
    overdue: tuple[tuple[int, dt.date], ...]  # flagged and still not recorded

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan_id": str(self.plan_id), "trajectory_id": str(self.trajectory_id),
            "municipality": self.municipality, "coach_id": self.coach_id,
            "status": "completed" if self.completed else "running",
            "job_starts_on": self.job_starts_on.isoformat(), "ends_on": self.ends_on.isoformat(),
            "overdue_check_ins": [n for n, _ in self.overdue],
        }


def summarise(plan: CoachingPlan) -> PlanSummary:
    return PlanSummary(
        plan_id=plan.id, trajectory_id=plan.trajectory_id, municipality=plan.municipality,
        coach_id=plan.coach_id, completed=plan.completed, job_starts_on=plan.job_starts_on,
        ends_on=plan.ends_on, next_action_on=plan.next_action_on(),
        overdue=tuple((n, d) for n, d in sorted(plan.overdue.items()) if n not in plan.check_ins),
    )


def describe(plan: CoachingPlan, answers: Sequence[RegistryAnswer] = ()) -> dict[str, Any]:
    """The whole plan as the coach and the municipality see it, with the registry's
    `answers` about its placements."""
    return {
        **summarise(plan).as_dict(),
        "number": plan.number,
        "six_month_on": plan.six_month_on.isoformat(),
        "grace_days": plan.grace_days,
        "employed": plan.current_job.ended_on is None,
        "jobs": [{
            "employer": job.employer, "hours_per_week": job.hours_per_week,
            "contract_type": job.contract_type, "starts_on": job.starts_on.isoformat(),
            "ended_on": _iso(job.ended_on), "ended_by": job.ended_by,
        } for job in plan.jobs],
        "check_ins": [_check_in(plan, n) for n in range(1, len(plan.check_ins_due) + 1)],
        "six_month_point": _measurement(plan.six_month_point, "measured_on", "employed"),
        # Results by the one evidence rule (`contracts.outcomes`), as the records stand now.
        "outcomes": [_outcome(plan.outcome(months, answers)) for months in POINTS],
        "registry_answers": [{
            "observation_id": str(a.observation_id), "point": a.point, "months_after": a.months_after,
            "reference_date": a.reference_date.isoformat(), "observed_on": a.observed_on.isoformat(),
            "period_start": a.period_start.isoformat(), "period_end": a.period_end.isoformat(),
            "employed": a.employed, "employer_id": a.employer_id, "hours_per_week": a.hours_per_week,
            "on_benefit": a.on_benefit, "benefit_kind": a.benefit_kind,
        } for a in answers],
        "completion": _measurement(plan.completion, "completed_on", "employed_at_end"),
        "reopen_requests": [{
            "request_id": str(r.request_id), "requested_on": r.requested_on.isoformat(),
            "reason": r.reason, "requested_by": r.requested_by,
        } for r in plan.reopen_requests],
        "follow_up_contacts": [{
            "contacted_on": f.contacted_on.isoformat(), "contact_made": f.contact_made,
            "employed": f.employed, "same_employer": f.same_employer,
        } for f in plan.follow_ups],
        "employer_confirmations": [{
            "confirmed_on": c.confirmed_on.isoformat(), "employed": c.employed,
            "same_employer": c.same_employer, "hours_per_week": c.hours_per_week,
            "recorded_by": c.recorded_by,
        } for c in plan.employer_confirmations],
        "version": plan.version,
    }


def overdue_items(summary: PlanSummary) -> list[dict[str, Any]]:
    return [{
        "plan_id": str(summary.plan_id), "trajectory_id": str(summary.trajectory_id),
        "municipality": summary.municipality, "coach_id": summary.coach_id,
        "check_in": number, "due_on": due_on.isoformat(),
    } for number, due_on in summary.overdue]


def _check_in(plan: CoachingPlan, number: int) -> dict[str, Any]:
    held = plan.check_ins.get(number)
    entry: dict[str, Any] = {
        "check_in": number, "due_on": plan.due_on(number).isoformat(),
        "overdue_from": plan.overdue_from(number).isoformat(),
        # A check-in held is overdue by the day it was held, whatever the scheduler
        # flagged while it was not entered yet; one not held, by that flag.
        "overdue": held.held_on >= plan.overdue_from(number) if held is not None
        else number in plan.overdue,
        "status": "recorded" if number in plan.check_ins
        else "overdue" if number in plan.overdue else "open",
    }
    if held is not None:
        entry.update(
            held_on=held.held_on.isoformat(), contact_made=held.contact_made,
            still_employed=held.still_employed, hours_per_week=held.hours_per_week,
            issues_raised=list(held.issues_raised), support=list(held.support),
            next_step=held.next_step, recorded_by=held.recorded_by,
        )
    return entry


def _measurement(measurement: Any, on: str, employed: str) -> dict[str, Any] | None:
    if measurement is None:
        return None
    return {on: measurement.on.isoformat(), employed: measurement.employed,
            "same_employer": measurement.same_employer,
            # what the evidence recorded by that day proved (None: measured before it was kept)
            "result": measurement.result, "evidence": measurement.evidence,
            "evidence_on": _iso(measurement.evidence_on)}


def _outcome(outcome: Outcome) -> dict[str, Any]:
    evidence = outcome.evidence
    return {"months": outcome.months, "point": outcome.point.isoformat(), "result": outcome.result,
            "evidence": None if evidence is None else {"kind": evidence.kind, "on": evidence.on.isoformat()},
            "same_employer": outcome.same_employer}


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()
