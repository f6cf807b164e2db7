"""Coaching: the year of job coaching after a placement, and the trajectories it follows.

Plain domain code: no Kafka, HTTP or SQL, and no clock of its own — "today" is passed in,
so the same rules run in a test that walks a whole year in a second. Rules that refuse a
command raise `PlanConflict` (the plan's state does not allow it) or `InvalidFact` (a
given fact cannot be right); neither message carries a value that was sent.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from dataclasses import dataclass, replace
from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import Aggregate, event

from contracts.outcomes import Contact, Observation, Outcome, Placement, outcome_at

PLAN_NAMESPACE = uuid.UUID("a9d35cf4-6b1e-4f0f-9c57-2b8e1f4d6a03")
AFTERCARE = "directe bemiddeling en nazorg"  # the discipline whose provider coaches


class PlanConflict(Exception):
    """The plan's state does not allow the command (answered as a conflict)."""


class InvalidFact(Exception):
    """A fact given with a command cannot be right; `field` names which one."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


def answers_id(trajectory_id: uuid.UUID) -> uuid.UUID:
    """Where coaching keeps the registry's answers about a trajectory."""
    return uuid.uuid5(PLAN_NAMESPACE, f"{trajectory_id}/registry-answers")


def plan_id(trajectory_id: uuid.UUID, number: int) -> uuid.UUID:
    """Plans are numbered per trajectory (a trajectory reopened and placed again after a
    finished year gets a second one). Deterministic, so two processes that start the same
    plan write the same aggregate and the store lets only one of them."""
    return uuid.uuid5(PLAN_NAMESPACE, f"{trajectory_id}/{number}")


def is_aftercare(discipline: str) -> bool:
    """"Directe bemiddeling en Nazorg", however the trajectory service spells it."""
    text = unicodedata.normalize("NFKD", discipline).encode("ascii", "ignore").decode()
    return " ".join(text.casefold().replace("-", " ").replace("_", " ").split()) == AFTERCARE


class FollowedTrajectory(Aggregate):
    """A trajectory coaching knows of: whose it is (municipality), in which programme, and
    which provider holds its aftercare, so that a placement starts a plan with the right
    coach."""

    aftercare_provider: str | None = None  # not in the first event: set by assignments

    @event("Followed")
    def __init__(self, id: uuid.UUID, *, municipality: str, programme: str,
                 opened_on: dt.date) -> None:
        self.municipality = municipality
        self.programme = programme
        self.opened_on = opened_on

    def assign_aftercare(self, provider: str, assigned_on: dt.date) -> None:
        if provider != self.aftercare_provider:
            self._aftercare_assigned(provider=provider, assigned_on=assigned_on)

    @event("AftercareAssigned", topic="coaching.FollowedTrajectory.AftercareAssigned.v1")
    def _aftercare_assigned(self, provider: str, assigned_on: dt.date) -> None:
        self.aftercare_provider = provider


@dataclass
class Job:
    employer: str
    hours_per_week: float
    contract_type: str
    starts_on: dt.date
    ended_on: dt.date | None = None  # the first day without this job
    ended_by: str | None = None  # "lost" or "changed" (straight on to another job)


@dataclass(frozen=True)
class CheckIn:
    number: int
    held_on: dt.date
    contact_made: bool
    still_employed: bool
    hours_per_week: float | None
    issues_raised: tuple[str, ...]
    support: tuple[str, ...]
    next_step: str | None
    recorded_by: str | None


@dataclass(frozen=True)
class Measurement:
    on: dt.date
    employed: bool  # the job record on that day
    same_employer: bool | None
    result: str | None = None  # what the evidence proved then (None: measured before it was kept)
    evidence: str | None = None
    evidence_on: dt.date | None = None


@dataclass(frozen=True)
class FollowUp:
    contacted_on: dt.date
    contact_made: bool
    employed: bool | None
    same_employer: bool | None


@dataclass(frozen=True)
class EmployerConfirmation:
    confirmed_on: dt.date
    employed: bool
    same_employer: bool  # the confirming employer is the placement's
    hours_per_week: float | None
    recorded_by: str | None


@dataclass(frozen=True)
class RegistryAnswer:
    """What the employment registry and the benefit administration answered for one
    follow-up point of a placement (intake imports the answer; coaching keeps it with the
    plan). The two halves arrive as two events and may come in either order."""

    observation_id: uuid.UUID
    point: str
    months_after: int
    reference_date: dt.date  # the placement's start the point counts from
    observed_on: dt.date
    period_start: dt.date
    period_end: dt.date
    employed: bool | None = None
    employer_id: str | None = None
    hours_per_week: float | None = None
    on_benefit: bool | None = None
    benefit_kind: str | None = None


@dataclass(frozen=True)
class ReopenRequest:
    request_id: uuid.UUID
    requested_on: dt.date
    reason: str
    requested_by: str


class CoachingPlan(Aggregate):
    """One client's year of job coaching, from the job's start to the same date a year on.

    The schedule is fixed when the plan starts. What is due (an overdue check-in, the
    six-month point, the end) is decided from the plan's own state by `act_until(today)`,
    so whoever calls it, however often, records each due event once.
    """

    class Event(Aggregate.Event):
        # Every stored event of a plan names its trajectory and municipality, so each one
        # can be published (and audited) on its own; `trigger_event` fills them in.
        trajectory_id: uuid.UUID
        municipality: str

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("trajectory_id", self.trajectory_id)
        kwargs.setdefault("municipality", self.municipality)
        super().trigger_event(event_class, **kwargs)

    @event("Started", topic="coaching.CoachingPlan.Started.v1")
    def __init__(self, id: uuid.UUID, *, trajectory_id: uuid.UUID, municipality: str,
                 number: int, coach_id: str, employer: str, hours_per_week: float,
                 contract_type: str, job_starts_on: dt.date, check_ins_due: list[dt.date],
                 six_month_on: dt.date, ends_on: dt.date, grace_days: int) -> None:
        self.trajectory_id = trajectory_id
        self.municipality = municipality
        self.number = number
        self.coach_id = coach_id
        self.job_starts_on = job_starts_on
        self.check_ins_due = list(check_ins_due)
        self.six_month_on = six_month_on
        self.ends_on = ends_on
        self.grace_days = grace_days
        self.jobs = [Job(employer, hours_per_week, contract_type, job_starts_on)]
        self.check_ins: dict[int, CheckIn] = {}
        self.overdue: dict[int, dt.date] = {}  # check-in -> its due date
        self.six_month_point: Measurement | None = None
        self.completion: Measurement | None = None
        self.follow_ups: list[FollowUp] = []
        self.employer_confirmations: list[EmployerConfirmation] = []
        self.reopen_requests: list[ReopenRequest] = []

    # --- what the plan knows ----------------------------------------------------------

    @property
    def completed(self) -> bool:
        return self.completion is not None

    @property
    def current_job(self) -> Job:
        return self.jobs[-1]

    def job_on(self, day: dt.date) -> Job | None:
        """The job the client held on `day`, if any."""
        for job in reversed(self.jobs):
            if job.starts_on <= day:
                return job if job.ended_on is None or day < job.ended_on else None
        return None

    def employed_on(self, day: dt.date) -> bool:
        return self.job_on(day) is not None

    def same_employer_on(self, day: dt.date) -> bool | None:
        job = self.job_on(day)
        return None if job is None else _same(job.employer, self.jobs[0].employer)

    def due_on(self, number: int) -> dt.date:
        return self.check_ins_due[number - 1]

    def overdue_from(self, number: int) -> dt.date:
        """The first day a check-in not yet recorded is overdue."""
        return self.due_on(number) + dt.timedelta(days=self.grace_days + 1)

    def outstanding(self) -> list[int]:
        """Scheduled check-ins not recorded yet, in order."""
        return [n for n in range(1, len(self.check_ins_due) + 1) if n not in self.check_ins]

    def evidence(self, answers: Sequence[RegistryAnswer] = ()) -> Placement:
        """What the plan and the registry's `answers` about its trajectory hold as
        evidence of the placement's results, for the one rule of `contracts.outcomes`
        (the same rule reporting's figures follow). An answer counts for the placement it
        was asked about: the plan's, not a new job within it."""
        first = self.jobs[0]
        contacts = [Contact(c.held_on, c.still_employed, "check-in")
                    for c in self.check_ins.values() if c.contact_made]
        contacts += [Contact(f.contacted_on, bool(f.employed), "follow-up", f.same_employer)
                     for f in self.follow_ups if f.contact_made and f.employed is not None]
        contacts += [Contact(c.confirmed_on, True, "employer", c.same_employer)
                     for c in self.employer_confirmations if c.employed]
        return Placement(
            starts_on=self.job_starts_on, coached_until=self.ends_on,
            contacts=tuple(sorted(contacts, key=lambda c: (c.on, c.kind))),
            losses=tuple(sorted(j.ended_on for j in self.jobs if j.ended_by == "lost" and j.ended_on)),
            new_jobs=tuple(sorted((j.starts_on, _same(j.employer, first.employer)) for j in self.jobs[1:])),
            observations=tuple(sorted(
                (Observation(a.months_after, a.observed_on, a.employed) for a in answers
                 if a.employed is not None and a.reference_date == self.job_starts_on),
                key=lambda o: (o.months, o.on, o.employed))),
        )

    def outcome(self, months: int, answers: Sequence[RegistryAnswer] = ()) -> Outcome:
        return outcome_at(self.evidence(answers), months)

    def answers_about(self, answers: Sequence[RegistryAnswer]) -> list[RegistryAnswer]:
        """The registry's answers about a placement of this plan (its first job or a new
        one within its year)."""
        starts = {job.starts_on for job in self.jobs}
        return [a for a in answers if a.reference_date in starts]

    def next_action_on(self) -> dt.date | None:
        """The next date on which `act_until` has something to record, if any."""
        return min((day for day, *_ in self._actions()), default=None)

    # --- commands ---------------------------------------------------------------------

    def record_check_in(self, *, number: int | None, held_on: dt.date, contact_made: bool,
                        still_employed: bool | None, hours_per_week: float | None,
                        issues_raised: tuple[str, ...], support: tuple[str, ...],
                        next_step: str | None, recorded_by: str | None, today: dt.date) -> int:
        """Records a scheduled check-in (the first outstanding one when `number` is None)
        and returns its number. Outstanding check-ins of a completed plan can still be
        recorded, late; after that the municipality records follow-up contacts."""
        number = self._check_in_number(number)
        _not_after("held_on", held_on, today)
        if held_on < self.job_starts_on:
            raise InvalidFact("held_on", "must not be before the job started")
        employed = self.employed_on(held_on)
        if contact_made:
            if still_employed is None:
                raise InvalidFact("still_employed", "is required when contact was made")
            if still_employed and not employed:
                raise PlanConflict("The plan has no job on that date: record the new placement first.")
            if not still_employed and employed:
                raise PlanConflict("The plan has a job on that date: record when and why it was lost first.")
        elif still_employed is not None or hours_per_week is not None:
            field = "still_employed" if still_employed is not None else "hours_per_week"
            raise InvalidFact(field, "is known only when contact was made")
        if hours_per_week is not None and not employed:
            raise InvalidFact("hours_per_week", "is only for a client in work")
        if held_on >= self.overdue_from(number) and number not in self.overdue:
            # Held after its grace period while no scheduler run flagged it: it was overdue
            # all the same, and the record says so before it says it was held. Judged by
            # the day it was held (its valid date), not the day it was entered.
            self._check_in_overdue(check_in=number, due_on=self.due_on(number))
        self._check_in_recorded(
            check_in=number, held_on=held_on, contact_made=contact_made,
            still_employed=employed, hours_per_week=hours_per_week,
            issues_raised=list(dict.fromkeys(issues_raised)), support=list(dict.fromkeys(support)),
            next_step=next_step, recorded_by=recorded_by,
        )
        return number

    def lose_job(self, *, lost_on: dt.date, reason: str, today: dt.date) -> None:
        self._check_running()
        job = self.current_job
        if job.ended_on is not None:
            raise PlanConflict("The client has no job in this plan now: record a new placement first.")
        _not_after("lost_on", lost_on, today)
        if lost_on < job.starts_on:
            raise InvalidFact("lost_on", "must not be before the job started")
        if lost_on >= self.ends_on:
            raise InvalidFact("lost_on", "must be before the end of the coaching year")
        self._check_after_measurement("lost_on", lost_on)
        self._job_lost(lost_on=lost_on, reason=reason)

    def place_again(self, *, employer: str, hours_per_week: float, contract_type: str,
                    starts_on: dt.date) -> bool:
        """A new job within the year, after a loss or straight on from the current one.
        Returns False (and records nothing) when it is the current job told again."""
        job = self.current_job
        if starts_on == job.starts_on and _same(employer, job.employer):
            return False
        self._check_running()
        if starts_on >= self.ends_on:
            raise InvalidFact("starts_on", "must be before the end of the coaching year")
        if job.ended_on is None and starts_on <= job.starts_on:
            raise InvalidFact("starts_on", "must be after the current job started")
        if job.ended_on is not None and starts_on < job.ended_on:
            raise InvalidFact("starts_on", "must not be before the last job was lost")
        self._check_after_measurement("starts_on", starts_on)
        self._placed_again(employer=employer, hours_per_week=hours_per_week,
                           contract_type=contract_type, starts_on=starts_on,
                           same_employer=_same(employer, self.jobs[0].employer),
                           ends_on=self.ends_on)
        return True

    def change_coach(self, coach_id: str, changed_on: dt.date) -> None:
        if not self.completed and coach_id != self.coach_id:
            self._coach_changed(coach_id=coach_id, changed_on=changed_on)

    def request_reopen(self, *, reason: str, requested_on: dt.date, requested_by: str,
                       today: dt.date) -> uuid.UUID:
        """Asks for the trajectory to be reopened; the plan itself goes on."""
        _not_after("requested_on", requested_on, today)
        if requested_on < self.job_starts_on:
            raise InvalidFact("requested_on", "must not be before the job started")
        request_id = uuid.uuid5(self.id, f"reopen/{len(self.reopen_requests) + 1}")
        self._reopen_requested(request_id=request_id, reason=reason, requested_on=requested_on,
                               requested_by=requested_by, employed=self.employed_on(requested_on))
        return request_id

    def record_follow_up(self, *, contacted_on: dt.date, contact_made: bool,
                         employed: bool | None, same_employer: bool | None,
                         today: dt.date) -> None:
        if not self.completed:
            raise PlanConflict("The coaching year is still running: record a check-in instead.")
        _not_after("contacted_on", contacted_on, today)
        if contacted_on < self.ends_on:
            raise InvalidFact("contacted_on", "must not be before the end of the coaching year")
        if contact_made and employed is None:
            raise InvalidFact("employed", "is required when contact was made")
        if not contact_made and (employed is not None or same_employer is not None):
            raise InvalidFact("employed", "is known only when contact was made")
        if same_employer is not None and not employed:
            raise InvalidFact("same_employer", "is only for a client in work")
        self._follow_up_recorded(contacted_on=contacted_on, contact_made=contact_made,
                                 employed=employed, same_employer=same_employer)

    def confirm_by_employer(self, *, confirmed_on: dt.date, employed: bool, same_employer: bool,
                            hours_per_week: float | None, recorded_by: str | None,
                            today: dt.date) -> bool:
        """Records an employer's confirmation of whether the client worked for it on
        `confirmed_on`: while the plan runs and after the year, as check-ins and follow-up
        contacts are. Within the year it must agree with the plan's job record (correct
        that first, as with a check-in); after it nobody keeps that record, so it stands
        for itself. Returns False (and records nothing) when the same confirmation for
        that day is recorded already; another one for that day is a conflict."""
        _not_after("confirmed_on", confirmed_on, today)
        if confirmed_on < self.job_starts_on:
            raise InvalidFact("confirmed_on", "must not be before the job started")
        if hours_per_week is not None and not employed:
            raise InvalidFact("hours_per_week", "is only for a client in work")
        confirmation = EmployerConfirmation(confirmed_on, employed, same_employer, hours_per_week,
                                            recorded_by)
        for known in self.employer_confirmations:
            if known.confirmed_on == confirmed_on:
                if (known.employed, known.same_employer, known.hours_per_week) == (
                        employed, same_employer, hours_per_week):
                    return False
                raise PlanConflict("An employer's confirmation for that date is already recorded.")
        if confirmed_on < self.ends_on:
            job = self.job_on(confirmed_on)
            with_it = job is not None and _same(job.employer, self.jobs[0].employer) == same_employer
            if employed and job is None:
                raise PlanConflict("The plan has no job on that date: record the new placement first.")
            if employed and not with_it:
                raise PlanConflict("The plan has another employer on that date: record the new placement first.")
            if not employed and with_it:
                raise PlanConflict("The plan has a job with that employer on that date: "
                                   "record when and why it was lost first.")
        self._confirmed_by_employer(**vars(confirmation))
        return True

    def act_until(self, today: dt.date, answers: Sequence[RegistryAnswer] = ()) -> int:
        """Records, in date order, everything that fell due up to `today` and was not
        recorded yet; returns how many events that made. A point's result counts the
        registry's `answers` about the trajectory known by then."""
        before = len(self.pending_events)
        for day, _, number, action in sorted(self._actions(), key=lambda a: a[:3]):
            if day <= today:
                action(number, answers)
        return len(self.pending_events) - before

    # --- what falls due ---------------------------------------------------------------

    def _actions(self) -> list[tuple[dt.date, int, int, Any]]:
        """(date, kind, check-in, what to record): on one date, overdue check-ins come
        before the six-month point, and both before the end."""
        actions: list[tuple[dt.date, int, int, Any]] = [
            (self.overdue_from(n), 0, n, self._flag_overdue)
            for n in self.outstanding() if n not in self.overdue
        ]
        if self.six_month_point is None:
            actions.append((self.six_month_on, 1, 0, self._measure_six_months))
        if self.completion is None:
            actions.append((self.ends_on, 2, 0, self._complete))
        return actions

    def _flag_overdue(self, number: int, _: Sequence[RegistryAnswer]) -> None:
        self._check_in_overdue(check_in=number, due_on=self.due_on(number))

    # Each point's event carries the job record on that day (`employed`, as ever) and the
    # result the evidence recorded so far proves (`result`, `evidence`); reporting's
    # figures follow the same rule with what is recorded later (a check-in held in the
    # two weeks after the point, an employer's confirmation, the registry's answer).

    def _measure_six_months(self, _: int, answers: Sequence[RegistryAnswer]) -> None:
        on = self.six_month_on
        self._six_month_point_reached(measured_on=on, employed=self.employed_on(on),
                                      same_employer=self.same_employer_on(on),
                                      **_proven(self.outcome(6, answers)))

    def _complete(self, _: int, answers: Sequence[RegistryAnswer]) -> None:
        on = self.ends_on
        self._completed(completed_on=on, employed_at_end=self.employed_on(on),
                        same_employer=self.same_employer_on(on), **_proven(self.outcome(12, answers)))

    # --- rules ------------------------------------------------------------------------

    def _check_in_number(self, number: int | None) -> int:
        if number is None:
            outstanding = self.outstanding()
            if not outstanding:
                raise PlanConflict("Every scheduled check-in of this plan is recorded.")
            return outstanding[0]
        if not 1 <= number <= len(self.check_ins_due):
            raise InvalidFact("check_in", f"must be a scheduled check-in (1 to {len(self.check_ins_due)})")
        if number in self.check_ins:
            raise PlanConflict("This check-in is already recorded.")
        return number

    def _check_running(self) -> None:
        if self.completed:
            raise PlanConflict("The coaching year is over: record a follow-up contact instead.")

    def _check_after_measurement(self, field: str, day: dt.date) -> None:
        # A fact dated on or before a recorded measurement would change what ESF was told.
        if self.six_month_point is not None and day <= self.six_month_point.on:
            raise PlanConflict(f"The six-month point is already measured: {field} must be after it.")

    # --- events -----------------------------------------------------------------------

    @event("CheckInRecorded", topic="coaching.CoachingPlan.CheckInRecorded.v1")
    def _check_in_recorded(self, check_in: int, held_on: dt.date, contact_made: bool,
                           still_employed: bool, hours_per_week: float | None,
                           issues_raised: list[str], support: list[str], next_step: str | None,
                           recorded_by: str | None) -> None:
        self.check_ins[check_in] = CheckIn(check_in, held_on, contact_made, still_employed,
                                           hours_per_week, tuple(issues_raised), tuple(support),
                                           next_step, recorded_by)

    @event("CheckInOverdue", topic="coaching.CoachingPlan.CheckInOverdue.v1")
    def _check_in_overdue(self, check_in: int, due_on: dt.date) -> None:
        self.overdue[check_in] = due_on

    @event("JobLost", topic="coaching.CoachingPlan.JobLost.v1")
    def _job_lost(self, lost_on: dt.date, reason: str) -> None:
        self.current_job.ended_on, self.current_job.ended_by = lost_on, "lost"

    @event("PlacedAgain", topic="coaching.CoachingPlan.PlacedAgain.v1")
    def _placed_again(self, employer: str, hours_per_week: float, contract_type: str,
                      starts_on: dt.date, same_employer: bool, ends_on: dt.date) -> None:
        # `ends_on` is the plan's, unchanged: carried so the event says coaching goes on to it.
        if self.current_job.ended_on is None:
            self.current_job.ended_on, self.current_job.ended_by = starts_on, "changed"
        self.jobs.append(Job(employer, hours_per_week, contract_type, starts_on))

    @event("CoachChanged", topic="coaching.CoachingPlan.CoachChanged.v1")
    def _coach_changed(self, coach_id: str, changed_on: dt.date) -> None:
        self.coach_id = coach_id

    @event("ReopenRequested", topic="coaching.CoachingPlan.ReopenRequested.v1")
    def _reopen_requested(self, request_id: uuid.UUID, reason: str, requested_on: dt.date,
                          requested_by: str, employed: bool) -> None:
        self.reopen_requests.append(ReopenRequest(request_id, requested_on, reason, requested_by))

    # `result`, `evidence` and `evidence_on` default to None: events stored before they
    # existed are applied as they were (their result was never worked out).

    @event("SixMonthPointReached", topic="coaching.CoachingPlan.SixMonthPointReached.v1")
    def _six_month_point_reached(self, measured_on: dt.date, employed: bool,
                                 same_employer: bool | None, result: str | None = None,
                                 evidence: str | None = None,
                                 evidence_on: dt.date | None = None) -> None:
        self.six_month_point = Measurement(measured_on, employed, same_employer, result, evidence,
                                           evidence_on)

    @event("Completed", topic="coaching.CoachingPlan.Completed.v1")
    def _completed(self, completed_on: dt.date, employed_at_end: bool,
                   same_employer: bool | None, result: str | None = None,
                   evidence: str | None = None, evidence_on: dt.date | None = None) -> None:
        self.completion = Measurement(completed_on, employed_at_end, same_employer, result, evidence,
                                      evidence_on)

    @event("FollowUpRecorded", topic="coaching.CoachingPlan.FollowUpRecorded.v1")
    def _follow_up_recorded(self, contacted_on: dt.date, contact_made: bool,
                            employed: bool | None, same_employer: bool | None) -> None:
        self.follow_ups.append(FollowUp(contacted_on, contact_made, employed, same_employer))

    @event("ConfirmedByEmployer", topic="coaching.CoachingPlan.ConfirmedByEmployer.v1")
    def _confirmed_by_employer(self, confirmed_on: dt.date, employed: bool, same_employer: bool,
                               hours_per_week: float | None, recorded_by: str | None) -> None:
        self.employer_confirmations.append(EmployerConfirmation(
            confirmed_on, employed, same_employer, hours_per_week, recorded_by))


PLAN_EVENTS: tuple[type[Any], ...] = (
    CoachingPlan.Started, CoachingPlan.CheckInRecorded, CoachingPlan.CheckInOverdue,
    CoachingPlan.JobLost, CoachingPlan.PlacedAgain, CoachingPlan.CoachChanged,
    CoachingPlan.ReopenRequested, CoachingPlan.SixMonthPointReached, CoachingPlan.Completed,
    CoachingPlan.FollowUpRecorded, CoachingPlan.ConfirmedByEmployer,
)


def _proven(outcome: Outcome) -> dict[str, Any]:
    evidence = outcome.evidence
    return {"result": outcome.result, "evidence": evidence and evidence.kind,
            "evidence_on": evidence and evidence.on}


def _same(employer: str, other: str) -> bool:
    return " ".join(employer.casefold().split()) == " ".join(other.casefold().split())


def _not_after(field: str, day: dt.date, today: dt.date) -> None:
    if day > today:
        raise InvalidFact(field, "must not be in the future")


class RegistryAnswers(Aggregate):
    """The registry's and the benefit administration's answers about one trajectory's
    placements, as intake imported them (issue 15). Apart from the plans: an answer is
    kept whatever coaching knows of the placement yet, and never contends with the coach
    or the scheduler for a plan's next version."""

    @event("Opened", topic="coaching.RegistryAnswers.Opened.v1")
    def __init__(self, id: uuid.UUID, *, trajectory_id: uuid.UUID, municipality: str) -> None:
        self.trajectory_id = trajectory_id
        self.municipality = municipality
        self.answers: tuple[RegistryAnswer, ...] = ()

    def observe_employment(self, *, observation_id: uuid.UUID, point: str, months_after: int,
                           reference_date: dt.date, observed_on: dt.date, period_start: dt.date,
                           period_end: dt.date, employed: bool, employer_id: str | None,
                           hours_per_week: float | None) -> bool:
        """Keeps the registry's answer for a point of this placement, during the year and
        after it (the 24-month point comes a year after the plan ends), and also before
        coaching has seen the placement (intake's topic and trajectory's are read side by
        side). False when it is kept already: Kafka may deliver an answer twice."""
        known = self._answer_for(observation_id)
        if known is not None and known.employed is not None:
            return False
        self._employment_observed(
            observation_id=observation_id, point=point, months_after=months_after,
            reference_date=reference_date, observed_on=observed_on, period_start=period_start,
            period_end=period_end, employed=employed, employer_id=employer_id,
            hours_per_week=hours_per_week)
        return True

    def observe_benefit(self, *, observation_id: uuid.UUID, point: str, months_after: int,
                        reference_date: dt.date, observed_on: dt.date, period_start: dt.date,
                        period_end: dt.date, on_benefit: bool, benefit_kind: str | None) -> bool:
        """Keeps the benefit administration's answer for the same point; False when kept."""
        known = self._answer_for(observation_id)
        if known is not None and known.on_benefit is not None:
            return False
        self._benefit_observed(
            observation_id=observation_id, point=point, months_after=months_after,
            reference_date=reference_date, observed_on=observed_on, period_start=period_start,
            period_end=period_end, on_benefit=on_benefit, benefit_kind=benefit_kind)
        return True

    @event("EmploymentObserved", topic="coaching.RegistryAnswers.EmploymentObserved.v1")
    def _employment_observed(self, observation_id: uuid.UUID, point: str, months_after: int,
                             reference_date: dt.date, observed_on: dt.date, period_start: dt.date,
                             period_end: dt.date, employed: bool, employer_id: str | None,
                             hours_per_week: float | None) -> None:
        answer = self._answer_for(observation_id) or RegistryAnswer(
            observation_id, point, months_after, reference_date, observed_on, period_start, period_end)
        self._keep(replace(answer, employed=employed, employer_id=employer_id,
                           hours_per_week=hours_per_week))

    @event("BenefitObserved", topic="coaching.RegistryAnswers.BenefitObserved.v1")
    def _benefit_observed(self, observation_id: uuid.UUID, point: str, months_after: int,
                          reference_date: dt.date, observed_on: dt.date, period_start: dt.date,
                          period_end: dt.date, on_benefit: bool, benefit_kind: str | None) -> None:
        answer = self._answer_for(observation_id) or RegistryAnswer(
            observation_id, point, months_after, reference_date, observed_on, period_start, period_end)
        self._keep(replace(answer, on_benefit=on_benefit, benefit_kind=benefit_kind))

    def _answer_for(self, observation_id: uuid.UUID) -> RegistryAnswer | None:
        return next((a for a in self.answers if a.observation_id == observation_id), None)

    def _keep(self, answer: RegistryAnswer) -> None:
        others = tuple(a for a in self.answers if a.observation_id != answer.observation_id)
        self.answers = tuple(sorted((*others, answer), key=lambda a: (a.observed_on, str(a.observation_id))))
