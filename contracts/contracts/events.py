"""The integration-event catalogue.

Integration events are what services promise each other; they are not the services'
own domain events, which are translated at the edge. Rules kept here:
- no BSN, name, address or date of birth: a client is a pseudonymous id;
- every event belongs to a trajectory (`trajectory_id` is the Kafka key and the subject);
- a model evolves only additively; a breaking change is a new type with a new version
  suffix (NL GOV profile), and both live here until the old one is gone from the topics.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.municipalities import Municipality

Programme = Literal["social-activation", "reintegration", "focus2move"]
BenefitSituation = Literal["bijstand", "wao", "bijstand-wao", "anw", "none"]
ObstacleKind = Literal["debts", "addiction", "psychosocial", "housing", "other"]
ClosingReason = Literal[
    "placed", "dropped-out", "moved-away", "back-on-benefit", "unknown-destination", "other"
]
Hours = Annotated[float, Field(ge=0, le=60)]

TYPE_PREFIX = "nl.reintegratie"


class Event(BaseModel):
    """Base of every integration event: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    catalogue: ClassVar[dict[str, type[Event]]] = {}

    trajectory_id: UUID

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            if cls.type in Event.catalogue:
                raise TypeError(f"event type {cls.type} is defined twice")
            Event.catalogue[cls.type] = cls


# --- intake ---------------------------------------------------------------------------


class ClientReferred(Event):
    """A municipality referred an eligible client to a programme."""

    type = f"{TYPE_PREFIX}.referral.client-referred.v1"
    referral_id: UUID
    client_id: UUID  # pseudonym: intake alone can link it to a person
    municipality: Municipality
    programme: Programme
    benefit: BenefitSituation
    referred_on: dt.date
    # "lbu": the client accepted a job instead of a benefit; the trajectory starts with a
    # temporary WNK contract on `wnk_contract_starts_on`.
    route: Literal["referral", "lbu"] = "referral"
    wnk_contract_starts_on: dt.date | None = None


ReasonCode = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]


class ReferralRejected(Event):
    """A referral did not meet a programme's eligibility rules."""

    type = f"{TYPE_PREFIX}.referral.rejected.v1"
    referral_id: UUID
    client_id: UUID
    municipality: Municipality
    programme: Programme
    reason_code: ReasonCode  # the first reason; all of them in reason_codes
    rejected_on: dt.date
    reason_codes: tuple[ReasonCode, ...] = ()


class ReferralWithdrawn(Event):
    """The municipality withdrew an open referral; its trajectory, if any, should close."""

    type = f"{TYPE_PREFIX}.referral.withdrawn.v1"
    referral_id: UUID
    municipality: Municipality
    withdrawn_on: dt.date
    reason: Literal["client-request", "moved-away", "back-on-benefit", "error", "other"]


class JobOfferMade(Event):
    """LBU: a new applicant was offered a job (at WNK) instead of a benefit.
    `trajectory_id` is reserved for the Focus2Move trajectory, should they accept."""

    type = f"{TYPE_PREFIX}.lbu.offer-made.v1"
    offer_id: UUID
    client_id: UUID
    municipality: Municipality
    offered_on: dt.date


class JobOfferAccepted(Event):
    """LBU: the applicant took the job; a Focus2Move referral (route "lbu") follows."""

    type = f"{TYPE_PREFIX}.lbu.offer-accepted.v1"
    offer_id: UUID
    client_id: UUID
    municipality: Municipality
    accepted_on: dt.date
    contract_starts_on: dt.date


class JobOfferRefused(Event):
    """LBU: the applicant refused; they are watched until `respond_by`."""

    type = f"{TYPE_PREFIX}.lbu.offer-refused.v1"
    offer_id: UUID
    client_id: UUID
    municipality: Municipality
    refused_on: dt.date
    respond_by: dt.date


class DestinationUnknown(Event):
    """LBU: refused, and neither started the contract nor came back for a benefit in time."""

    type = f"{TYPE_PREFIX}.lbu.destination-unknown.v1"
    offer_id: UUID
    client_id: UUID
    municipality: Municipality
    since: dt.date


class ReturnedForBenefit(Event):
    """LBU: the applicant came back for a benefit (out of the unknown cohort, if in it)."""

    type = f"{TYPE_PREFIX}.lbu.returned-for-benefit.v1"
    offer_id: UUID
    client_id: UUID
    municipality: Municipality
    returned_on: dt.date
    from_unknown_destination: bool


class PersonErased(Event):
    """The person behind this trajectory was erased: their key is gone, so their personal
    data is unreadable everywhere; the trajectory's events and figures stay."""

    type = f"{TYPE_PREFIX}.privacy.person-erased.v1"
    client_id: UUID
    municipality: Municipality
    erased_on: dt.date
    reason: Literal["retention-ended", "request"]


# --- trajectory ----------------------------------------------------------------------


class TrajectoryOpened(Event):
    """A referral became a trajectory."""

    type = f"{TYPE_PREFIX}.trajectory.opened.v1"
    referral_id: UUID
    client_id: UUID
    municipality: Municipality
    programme: Programme
    opened_on: dt.date


class ProviderAssigned(Event):
    """A contracted provider took on one discipline of a trajectory."""

    type = f"{TYPE_PREFIX}.trajectory.provider-assigned.v1"
    provider: str = Field(min_length=1, max_length=80)
    discipline: str = Field(min_length=1, max_length=80)
    assigned_on: dt.date


class ContractStarted(Event):
    """Work track: a temporary employment contract started (Focus2Move: at WNK)."""

    type = f"{TYPE_PREFIX}.trajectory.contract-started.v1"
    employer: str = Field(min_length=1, max_length=120)
    starts_on: dt.date
    ends_on: dt.date | None = None


class ObstacleIdentified(Event):
    """Obstacle track: something standing between the client and work was named."""

    type = f"{TYPE_PREFIX}.trajectory.obstacle-identified.v1"
    obstacle_id: UUID
    kind: ObstacleKind
    identified_on: dt.date
    # Added with provider assignment: the discipline that takes the obstacle on, if any.
    discipline: str | None = Field(None, min_length=1, max_length=80)


class ObstacleResolved(Event):
    """Obstacle track: an obstacle was removed or made manageable."""

    type = f"{TYPE_PREFIX}.trajectory.obstacle-resolved.v1"
    obstacle_id: UUID
    outcome: Literal["resolved", "manageable"]
    resolved_on: dt.date


class PlacedInJob(Event):
    """The client started a regular job: the start of a year of job coaching."""

    type = f"{TYPE_PREFIX}.trajectory.placed-in-job.v1"
    municipality: Municipality
    employer: str = Field(min_length=1, max_length=120)
    hours_per_week: Hours
    contract_type: Literal["permanent", "fixed-term", "temporary-agency", "other"]
    starts_on: dt.date


class TrajectoryClosed(Event):
    """The trajectory ended, with the reason why."""

    type = f"{TYPE_PREFIX}.trajectory.closed.v1"
    reason: ClosingReason
    closed_on: dt.date


Discipline = Annotated[str, Field(min_length=1, max_length=80)]
ContractEndReason = Literal[
    "term-expired", "regular-job", "dismissed", "resigned", "trajectory-closed", "other"
]


class AssignmentWaitlisted(Event):
    """No contracted provider had a free place in a discipline: the trajectory waits in
    order and is assigned (ProviderAssigned) when a place frees."""

    type = f"{TYPE_PREFIX}.trajectory.assignment-waitlisted.v1"
    discipline: Discipline
    waitlisted_on: dt.date


class AssignmentRefused(Event):
    """No provider can be assigned to a discipline: no contract covers the municipality,
    or none on that date (contracts run for a period)."""

    type = f"{TYPE_PREFIX}.trajectory.assignment-refused.v1"
    discipline: Discipline
    refused_on: dt.date
    reason: Literal["outside-contract-period", "no-contract-for-municipality"]


class ProviderReleased(Event):
    """A provider's part in one discipline of a trajectory ended; its place is free again."""

    type = f"{TYPE_PREFIX}.trajectory.provider-released.v1"
    provider: str = Field(min_length=1, max_length=80)
    discipline: Discipline
    released_on: dt.date
    reason: Literal["completed", "trajectory-ended"]


class PlanAgreed(Event):
    """Intake and diagnosis led to a plan; it names the further disciplines it needs."""

    type = f"{TYPE_PREFIX}.trajectory.plan-agreed.v1"
    agreed_on: dt.date
    disciplines: tuple[Discipline, ...] = ()


class ContractExtended(Event):
    """Work track: the temporary contract runs longer."""

    type = f"{TYPE_PREFIX}.trajectory.contract-extended.v1"
    employer: str = Field(min_length=1, max_length=120)
    extended_on: dt.date
    ends_on: dt.date


class ContractEnded(Event):
    """Work track: the temporary contract ended."""

    type = f"{TYPE_PREFIX}.trajectory.contract-ended.v1"
    employer: str = Field(min_length=1, max_length=120)
    ended_on: dt.date
    reason: ContractEndReason


class MediationAttemptFailed(Event):
    """Work first: an attempt to mediate the client into work did not succeed."""

    type = f"{TYPE_PREFIX}.trajectory.mediation-failed.v1"
    attempted_on: dt.date
    reason: Literal["no-suitable-vacancy", "not-hired", "not-ready", "other"]


class SchoolingStarted(Event):
    """Schooling began, after a failed mediation attempt, for a stated labour-market need."""

    type = f"{TYPE_PREFIX}.trajectory.schooling-started.v1"
    starts_on: dt.date
    relevance: Literal[
        "shortage-occupation", "required-qualification", "employer-commitment", "basic-work-skills"
    ]
    occupation: str = Field(min_length=1, max_length=120)  # what the schooling prepares for


class SchoolingEnded(Event):
    """The schooling ended, completed or stopped."""

    type = f"{TYPE_PREFIX}.trajectory.schooling-ended.v1"
    ended_on: dt.date
    outcome: Literal["completed", "stopped"]


class TrajectoryReopened(Event):
    """A placed client needs more than coaching: the trajectory is active again."""

    type = f"{TYPE_PREFIX}.trajectory.reopened.v1"
    reopened_on: dt.date
    reason: Literal["job-lost", "obstacles-returned", "needs-training", "health", "other"]


# --- the tender's reference data (published by trajectory) ---------------------------
# These belong to no trajectory: `trajectory_id` carries the id of the reference aggregate
# (a budget, a programme, a contract), which is their Kafka key and subject.


class BudgetSet(Event):
    """A budget of the tender: its total, its sources (ESF-3, the WWB work budget) and
    each municipality's share, in whole euros."""

    type = f"{TYPE_PREFIX}.tender.budget-set.v1"
    budget: str = Field(min_length=1, max_length=80)
    title: str = Field(min_length=1, max_length=200)
    programmes: tuple[Programme, ...]
    total_eur: int = Field(ge=0)
    sources_eur: dict[Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")], Annotated[int, Field(ge=0)]]
    shares_eur: dict[Municipality, Annotated[int, Field(ge=0)]]


class ProgrammeVolumeSet(Event):
    """The yearly volume contracted for a programme (the five municipalities together)."""

    type = f"{TYPE_PREFIX}.tender.programme-volume-set.v1"
    programme: Programme
    yearly_volume: int = Field(ge=0)
    set_on: dt.date  # from when this volume holds


class ContractAwarded(Event):
    """A provider was awarded one discipline of a programme for some municipalities, with
    a number of places at a tariff per trajectory (what an assignment commits of the
    budget). Places and the end date may change later; the tariff does not."""

    type = f"{TYPE_PREFIX}.tender.contract-awarded.v1"
    provider: str = Field(min_length=1, max_length=80)
    programme: Programme
    discipline: Discipline
    municipalities: tuple[Municipality, ...]
    starts_on: dt.date
    ends_on: dt.date
    places: int = Field(ge=0)
    tariff_eur: int = Field(ge=0)


# --- coaching ------------------------------------------------------------------------

# Enumerations rather than free text: a coach's notes about a person are personal data.
ContractType = Literal["permanent", "fixed-term", "temporary-agency", "other"]
CheckInIssue = Literal[
    "debts", "childcare", "travel", "conflict-at-work", "health", "working-hours", "other"
]
NextStep = Literal[
    "next-check-in", "extra-contact", "meet-employer", "refer-to-support", "request-reopen", "none"
]
ReopenReason = Literal["job-lost", "obstacles-returned", "needs-training", "health", "other"]
# "provider:<slug>" (the provider holding "Directe bemiddeling en Nazorg") or
# "municipality:<name>" (the municipality's own job coach): a role, never a person.
CoachId = Annotated[str, Field(pattern=r"^(provider|municipality):[a-z0-9-]{1,64}$")]
# A placement's result at a follow-up point and what proves it (`contracts.outcomes`).
OutcomeResult = Literal["employed", "not-employed", "unknown"]
OutcomeEvidence = Literal["registry", "employer", "check-in", "follow-up", "job-loss"]


class CoachingStarted(Event):
    """A year of job coaching began after a placement."""

    type = f"{TYPE_PREFIX}.coaching.started.v1"
    plan_id: UUID
    municipality: Municipality
    coach_id: str = Field(min_length=1, max_length=80)
    job_starts_on: dt.date
    ends_on: dt.date
    check_ins_due: tuple[dt.date, ...]
    # Added with the coaching plan (optional, so the first shape still validates):
    employer: str | None = Field(None, min_length=1, max_length=120)
    hours_per_week: Hours | None = None
    contract_type: ContractType | None = None
    six_month_on: dt.date | None = None  # when the six-month point (ESF) is measured
    grace_days: int | None = Field(None, ge=0, le=60)  # after a due date, before overdue


class CheckInRecorded(Event):
    """The coach recorded a check-in."""

    type = f"{TYPE_PREFIX}.coaching.check-in-recorded.v1"
    plan_id: UUID
    check_in: int = Field(ge=1)
    held_on: dt.date
    contact_made: bool
    still_employed: bool
    hours_per_week: Hours | None = None
    support: tuple[Literal["debts", "childcare", "travel", "conflict-at-work", "other"], ...] = ()
    # Added with the coaching plan. Without contact, `still_employed` is the last known status.
    issues_raised: tuple[CheckInIssue, ...] = ()
    next_step: NextStep | None = None
    recorded_by: CoachId | None = None


class CheckInOverdue(Event):
    """A check-in was not recorded within the grace period after it fell due."""

    type = f"{TYPE_PREFIX}.coaching.check-in-overdue.v1"
    plan_id: UUID
    check_in: int = Field(ge=1)
    due_on: dt.date


class JobLost(Event):
    """The coached client lost the job."""

    type = f"{TYPE_PREFIX}.coaching.job-lost.v1"
    plan_id: UUID
    lost_on: dt.date
    reason: Literal["dismissed", "resigned", "contract-ended", "illness", "other"]


class CoachingCompleted(Event):
    """The coaching year ended; the outcome counts for retention figures."""

    type = f"{TYPE_PREFIX}.coaching.completed.v1"
    plan_id: UUID
    completed_on: dt.date
    employed_at_end: bool  # the coach's job record on that day: not evidence (read `result`)
    same_employer: bool | None = None
    # What the evidence recorded by then proves (`contracts.outcomes`); absent from events
    # published before coaching worked it out.
    result: OutcomeResult | None = None
    evidence: OutcomeEvidence | None = None
    evidence_on: dt.date | None = None


class PlacedAgain(Event):
    """The coached client started another job within the coaching year (after losing one,
    or moving straight on); coaching goes on to the plan's original end date."""

    type = f"{TYPE_PREFIX}.coaching.placed-again.v1"
    plan_id: UUID
    starts_on: dt.date
    employer: str = Field(min_length=1, max_length=120)
    hours_per_week: Hours
    contract_type: ContractType
    same_employer: bool  # as the placement that started the plan
    ends_on: dt.date  # unchanged: the end of the coaching year


class CoachChanged(Event):
    """Another coach took over the plan (a provider was given the aftercare later)."""

    type = f"{TYPE_PREFIX}.coaching.coach-changed.v1"
    plan_id: UUID
    coach_id: CoachId
    changed_on: dt.date


class SixMonthPointReached(Event):
    """Six months after the placement, when ESF measures results: in work or not."""

    type = f"{TYPE_PREFIX}.coaching.six-month-point.v1"
    plan_id: UUID
    measured_on: dt.date
    employed: bool  # the coach's job record on that day: not evidence (read `result`)
    same_employer: bool | None = None  # when employed: with the employer of the placement
    # What the evidence recorded by then proves (`contracts.outcomes`): "unknown" when no
    # contact, employer or registry speaks for the point; absent from older events.
    result: OutcomeResult | None = None
    evidence: OutcomeEvidence | None = None
    evidence_on: dt.date | None = None


class TrajectoryReopenRequested(Event):
    """Coaching asks the trajectory service to reopen the trajectory: the person needs
    more than coaching. The coaching plan itself goes on to its end date."""

    type = f"{TYPE_PREFIX}.coaching.trajectory-reopen-requested.v1"
    request_id: UUID
    plan_id: UUID
    municipality: Municipality
    requested_on: dt.date
    reason: ReopenReason
    requested_by: CoachId
    employed: bool  # whether the client is in a job on `requested_on`


class FollowUpContactRecorded(Event):
    """After the coaching year, the municipality kept in touch: a later contact."""

    type = f"{TYPE_PREFIX}.coaching.follow-up-recorded.v1"
    plan_id: UUID
    contacted_on: dt.date
    contact_made: bool
    employed: bool | None = None  # known only when contact was made
    same_employer: bool | None = None


class EmploymentConfirmedByEmployer(Event):
    """An employer confirmed, to the coach, whether the coached client worked for it on
    `confirmed_on` (the valid date the employer speaks for), during the coaching year or
    after it: evidence of the placement's result (issue 15). Who at the employer said so
    is not recorded: an employer, never a person."""

    type = f"{TYPE_PREFIX}.coaching.employment-confirmed-by-employer.v1"
    plan_id: UUID
    municipality: Municipality
    confirmed_on: dt.date
    employed: bool  # the client worked for the confirming employer on `confirmed_on`
    same_employer: bool  # the confirming employer is the placement's
    hours_per_week: Hours | None = None  # when employed
    recorded_by: CoachId | None = None


# --- the employment registry (imported by intake) -----------------------------------
# Follow-up points answered by the national employment registry (UWV's policy
# administration, by file exchange) and the municipality's own benefit administration.
# Keyed as the event the point follows: a placement's trajectory, or for the LBU
# unknown-destination cohort the offer's reserved trajectory (with `offer_id`), as the
# lbu events are. Never a BSN: the client is the pseudonym intake links to the person.

RegistryCohort = Literal["lbu-unknown-destination", "placed"]
RegistryPoint = Literal[
    "lbu-3-months", "lbu-6-months", "lbu-12-months",
    "placement-6-months", "placement-12-months", "placement-24-months",
]
# The registry's employer number: an employer, never a person. It starts with a letter,
# so it can never be read as (or hide) a BSN.
EmployerId = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]{1,31}$")]
BenefitKind = Literal["bijstand", "ioaw", "ioaz", "bbz", "other"]


class EmploymentObserved(Event):
    """The employment registry's answer for one follow-up point: whether the client was
    employed in the period, by which employer (the registry's number) and how many hours."""

    type = f"{TYPE_PREFIX}.registry.employment-observed.v1"
    observation_id: UUID  # the same for both observations of one answer line: dedupe on it
    client_id: UUID
    municipality: Municipality
    offer_id: UUID | None = None  # the LBU offer, for the unknown-destination cohort
    cohort: RegistryCohort
    point: RegistryPoint
    months_after: int = Field(ge=1, le=60)
    reference_date: dt.date  # the refusal (LBU) or the placement's start
    observed_on: dt.date  # the point itself: reference_date plus months_after
    period_start: dt.date
    period_end: dt.date
    employed: bool
    employer_id: EmployerId | None = None  # when employed
    hours_per_week: Hours | None = None  # when employed
    source: Literal["registry"] = "registry"


class BenefitObserved(Event):
    """The municipality's benefit administration for the same point: whether the client
    was back on a benefit in the period, and which."""

    type = f"{TYPE_PREFIX}.registry.benefit-observed.v1"
    observation_id: UUID
    client_id: UUID
    municipality: Municipality
    offer_id: UUID | None = None
    cohort: RegistryCohort
    point: RegistryPoint
    months_after: int = Field(ge=1, le=60)
    reference_date: dt.date
    observed_on: dt.date
    period_start: dt.date
    period_end: dt.date
    on_benefit: bool
    benefit_kind: BenefitKind | None = None  # when on a benefit
    source: Literal["benefit-administration"] = "benefit-administration"


def event_class(type_: str) -> type[Event] | None:
    """The model for a CloudEvent type, or None when the catalogue does not know it."""
    return Event.catalogue.get(type_)
