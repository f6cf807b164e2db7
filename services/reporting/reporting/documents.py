"""What the events mean for reporting: one document per trajectory (and per LBU offer),
folded from every event about it, whatever service published it.

Plain code: no Kafka, HTTP or SQL. Each handler sets the fields its event speaks for, so
the order in which events of different services arrive does not change the document,
and a rebuild from offset 0 gives the same bytes as the live one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from contracts import events as ev
from contracts.envelope import Attributes

Doc = dict[str, Any]
TRAJECTORY, OFFER, TENDER = "trajectory", "offer", "tender"

LBU_EVENTS = (ev.JobOfferMade, ev.JobOfferAccepted, ev.JobOfferRefused, ev.DestinationUnknown,
              ev.ReturnedForBenefit)
# The tender's reference data (budgets, volumes, contracts): one document per budget,
# programme or contract, belonging to no municipality.
TENDER_EVENTS = (ev.BudgetSet, ev.ProgrammeVolumeSet, ev.ContractAwarded)


# Per event class: the kind of its document, and whether it names a municipality. Asked
# once per class: getattr of a field a pydantic model lacks takes its slow __getattr__.
_KINDS: dict[type, str] = {}
_MUNICIPAL: dict[type, bool] = {}


def _kind(cls: type) -> str:
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _KINDS[cls] = (OFFER if issubclass(cls, LBU_EVENTS)
                              else TENDER if issubclass(cls, TENDER_EVENTS) else TRAJECTORY)
    return kind


def _municipal(cls: type[ev.Event]) -> bool:
    municipal = _MUNICIPAL.get(cls)
    if municipal is None:
        municipal = _MUNICIPAL[cls] = "municipality" in cls.model_fields
    return municipal


def key_of(event: ev.Event, attributes: Attributes | None = None) -> tuple[str, str]:
    """Which document an event belongs to. The envelope's subject, when given, is the
    trajectory id already written out (decoding checked that they agree)."""
    kind = _kind(type(event))
    if kind == OFFER:
        return kind, str(event.offer_id)
    if type(event) in REGISTRY_EVENTS and event.offer_id is not None:
        return OFFER, str(event.offer_id)  # the LBU cohort's follow-up: its offer's document
    return kind, attributes.subject if attributes is not None else str(event.trajectory_id)


def new_document(kind: str, id_: str) -> Doc:
    return {"kind": kind, "id": id_, "municipality": None, "events": 0, "types": {}}


def project(doc: Doc, event: ev.Event, attributes: Attributes) -> Doc:
    """Folds one event into its document (in place) and returns it."""
    doc["events"] += 1
    doc["types"][attributes.type] = doc["types"].get(attributes.type, 0) + 1
    municipality = event.municipality if _municipal(type(event)) else None
    if municipality:
        doc["municipality"] = municipality
    handler = HANDLERS.get(type(event))
    if handler:
        handler(doc, event)
    return doc


def _d(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _referred(doc: Doc, e: ev.ClientReferred) -> None:
    doc.update(programme=e.programme, client_id=str(e.client_id), referral_id=str(e.referral_id),
               benefit=e.benefit, route=e.route, referred_on=_d(e.referred_on))
    doc.setdefault("referral", {})["status"] = doc.get("referral", {}).get("status") or "referred"


def _rejected(doc: Doc, e: ev.ReferralRejected) -> None:
    doc.update(programme=e.programme, client_id=str(e.client_id), referral_id=str(e.referral_id))
    doc["referral"] = {"status": "rejected", "rejected_on": _d(e.rejected_on),
                       "reasons": list(e.reason_codes or (e.reason_code,))}


def _withdrawn(doc: Doc, e: ev.ReferralWithdrawn) -> None:
    doc.setdefault("referral", {}).update(status="withdrawn", withdrawn_on=_d(e.withdrawn_on),
                                          withdrawal_reason=e.reason)


def _opened(doc: Doc, e: ev.TrajectoryOpened) -> None:
    doc.update(programme=e.programme, client_id=str(e.client_id), opened_on=_d(e.opened_on))


def _assigned(doc: Doc, e: ev.ProviderAssigned) -> None:
    assignments = doc.setdefault("assignments", {})
    assignments[e.discipline] = {"provider": e.provider, "assigned_on": _d(e.assigned_on)}
    # Every assignment commits the contract's tariff, a reassignment (after a reopening)
    # too: keyed by date and discipline, so a redelivered event cannot count twice.
    doc.setdefault("commitments", {})[f"{_d(e.assigned_on)}|{e.discipline}"] = e.provider
    waited = doc.get("waitlist", {}).get(e.discipline)
    if waited is not None and "assigned_on" not in waited:
        waited["assigned_on"] = _d(e.assigned_on)


def _waitlisted(doc: Doc, e: ev.AssignmentWaitlisted) -> None:
    doc.setdefault("waitlist", {})[e.discipline] = {"since": _d(e.waitlisted_on)}


def _refused(doc: Doc, e: ev.AssignmentRefused) -> None:
    doc.setdefault("refusals", {})[e.discipline] = {"refused_on": _d(e.refused_on), "reason": e.reason}
    waited = doc.get("waitlist", {}).get(e.discipline)
    if waited is not None:
        waited["refused_on"] = _d(e.refused_on)


def _released(doc: Doc, e: ev.ProviderReleased) -> None:
    assignment = doc.get("assignments", {}).get(e.discipline)
    if assignment is not None and assignment["provider"] == e.provider:
        assignment.update(released_on=_d(e.released_on), released_because=e.reason)


def _contract(doc: Doc, e: ev.ContractStarted) -> None:
    contract = doc.setdefault("contract", {})
    first = contract.get("starts_on")
    contract.update(employer=e.employer, ends_on=_d(e.ends_on),
                    starts_on=min(first, _d(e.starts_on)) if first else _d(e.starts_on))


def _obstacle(doc: Doc, e: ev.ObstacleIdentified) -> None:
    doc.setdefault("obstacles", {}).setdefault(str(e.obstacle_id), {}).update(
        kind=e.kind, identified_on=_d(e.identified_on))


def _obstacle_resolved(doc: Doc, e: ev.ObstacleResolved) -> None:
    doc.setdefault("obstacles", {}).setdefault(str(e.obstacle_id), {}).update(
        outcome=e.outcome, resolved_on=_d(e.resolved_on))


def _placed(doc: Doc, e: ev.PlacedInJob) -> None:
    doc["placement"] = {"employer": e.employer, "hours_per_week": e.hours_per_week,
                        "contract_type": e.contract_type, "starts_on": _d(e.starts_on)}


def _closed(doc: Doc, e: ev.TrajectoryClosed) -> None:
    doc["closed"] = {"reason": e.reason, "closed_on": _d(e.closed_on)}


def _coaching(doc: Doc) -> Doc:
    return doc.setdefault("coaching", {})


def _coaching_started(doc: Doc, e: ev.CoachingStarted) -> None:
    _coaching(doc).update(plan_id=str(e.plan_id), coach_id=e.coach_id,
                          job_starts_on=_d(e.job_starts_on), ends_on=_d(e.ends_on),
                          check_ins_due=len(e.check_ins_due))


def _coach_changed(doc: Doc, e: ev.CoachChanged) -> None:
    coaching = _coaching(doc)
    coaching.setdefault("coach_changes", {})[_d(e.changed_on)] = e.coach_id
    # The latest change names the coach now, whatever order the events came in.
    coaching["coach_now"] = coaching["coach_changes"][max(coaching["coach_changes"])]


def _check_in(doc: Doc, e: ev.CheckInRecorded) -> None:
    _coaching(doc).setdefault("check_ins", {})[str(e.check_in)] = {
        "held_on": _d(e.held_on), "contact_made": e.contact_made, "still_employed": e.still_employed}


def _overdue(doc: Doc, e: ev.CheckInOverdue) -> None:
    _coaching(doc).setdefault("overdue", {})[str(e.check_in)] = _d(e.due_on)


def _job_lost(doc: Doc, e: ev.JobLost) -> None:
    _coaching(doc).setdefault("jobs_lost", {})[_d(e.lost_on)] = e.reason


def _placed_again(doc: Doc, e: ev.PlacedAgain) -> None:
    _coaching(doc).setdefault("placed_again", {})[_d(e.starts_on)] = e.same_employer


def _six_months(doc: Doc, e: ev.SixMonthPointReached) -> None:
    _coaching(doc)["six_months"] = {"measured_on": _d(e.measured_on), "employed": e.employed,
                                    "same_employer": e.same_employer}


def _completed(doc: Doc, e: ev.CoachingCompleted) -> None:
    _coaching(doc)["completed"] = {"completed_on": _d(e.completed_on),
                                   "employed_at_end": e.employed_at_end,
                                   "same_employer": e.same_employer}


def _offer(doc: Doc) -> Doc:
    return doc.setdefault("lbu", {})


def _offer_made(doc: Doc, e: ev.JobOfferMade) -> None:
    _offer(doc).update(offered_on=_d(e.offered_on), trajectory_id=str(e.trajectory_id))


def _offer_accepted(doc: Doc, e: ev.JobOfferAccepted) -> None:
    _offer(doc).update(accepted_on=_d(e.accepted_on), contract_starts_on=_d(e.contract_starts_on))


def _offer_refused(doc: Doc, e: ev.JobOfferRefused) -> None:
    _offer(doc).update(refused_on=_d(e.refused_on), respond_by=_d(e.respond_by))


def _destination_unknown(doc: Doc, e: ev.DestinationUnknown) -> None:
    _offer(doc)["unknown_since"] = _d(e.since)


def _returned(doc: Doc, e: ev.ReturnedForBenefit) -> None:
    _offer(doc).update(returned_on=_d(e.returned_on),
                       returned_from_unknown=e.from_unknown_destination)


def _budget(doc: Doc, e: ev.BudgetSet) -> None:
    doc.update(fact="budget", budget=e.budget, title=e.title, programmes=list(e.programmes),
               total_eur=e.total_eur, sources_eur=dict(e.sources_eur), shares_eur=dict(e.shares_eur))


def _volume(doc: Doc, e: ev.ProgrammeVolumeSet) -> None:
    volumes = doc.setdefault("volumes", {})
    volumes[_d(e.set_on)] = e.yearly_volume
    doc.update(fact="programme", programme=e.programme, yearly_volume=volumes[max(volumes)])


def _contract_awarded(doc: Doc, e: ev.ContractAwarded) -> None:
    doc.update(fact="contract", provider=e.provider, programme=e.programme, discipline=e.discipline,
               municipalities=list(e.municipalities), starts_on=_d(e.starts_on), ends_on=_d(e.ends_on),
               places=e.places, tariff_eur=e.tariff_eur)


def _erased(doc: Doc, e: ev.PersonErased) -> None:
    doc["erased"] = {"erased_on": _d(e.erased_on), "reason": e.reason}


HANDLERS: dict[type[ev.Event], Callable[[Doc, Any], None]] = {
    ev.PersonErased: _erased,
    ev.ClientReferred: _referred, ev.ReferralRejected: _rejected, ev.ReferralWithdrawn: _withdrawn,
    ev.TrajectoryOpened: _opened, ev.ProviderAssigned: _assigned, ev.ContractStarted: _contract,
    ev.AssignmentWaitlisted: _waitlisted, ev.AssignmentRefused: _refused,
    ev.ProviderReleased: _released,
    ev.ObstacleIdentified: _obstacle, ev.ObstacleResolved: _obstacle_resolved,
    ev.PlacedInJob: _placed, ev.TrajectoryClosed: _closed,
    ev.CoachingStarted: _coaching_started, ev.CheckInRecorded: _check_in,
    ev.CheckInOverdue: _overdue, ev.CoachChanged: _coach_changed, ev.JobLost: _job_lost, ev.PlacedAgain: _placed_again,
    ev.SixMonthPointReached: _six_months, ev.CoachingCompleted: _completed,
    ev.JobOfferMade: _offer_made, ev.JobOfferAccepted: _offer_accepted,
    ev.JobOfferRefused: _offer_refused, ev.DestinationUnknown: _destination_unknown,
    ev.ReturnedForBenefit: _returned,
    ev.BudgetSet: _budget, ev.ProgrammeVolumeSet: _volume, ev.ContractAwarded: _contract_awarded,
}


# --- evidence of outcomes (issue 15): follow-up contacts and registry answers -----------
# Apart from the handlers above, registered below them. What figures and outcomes.py read:
#   coaching.follow_ups[contacted_on] = {contact_made, employed, same_employer}
#   registry[point][observation_id] = {cohort, months_after, reference_date, observed_on,
#       period_start, period_end, employed (EmploymentObserved), on_benefit, benefit_kind
#       (BenefitObserved)}
# on the trajectory's document for a placement, on the offer's for the LBU cohort. Both
# observations of one answer line share an observation id and so one entry; keyed by id,
# the entry does not depend on the order in which the two arrive.

REGISTRY_EVENTS = (ev.EmploymentObserved, ev.BenefitObserved)


def _follow_up(doc: Doc, e: ev.FollowUpContactRecorded) -> None:
    _coaching(doc).setdefault("follow_ups", {})[_d(e.contacted_on)] = {
        "contact_made": e.contact_made, "employed": e.employed, "same_employer": e.same_employer}


def _answer(doc: Doc, e: ev.EmploymentObserved | ev.BenefitObserved) -> Doc:
    answer = doc.setdefault("registry", {}).setdefault(e.point, {}).setdefault(str(e.observation_id), {})
    answer.update(cohort=e.cohort, months_after=e.months_after, reference_date=_d(e.reference_date),
                  observed_on=_d(e.observed_on), period_start=_d(e.period_start), period_end=_d(e.period_end))
    return answer


def _employment_observed(doc: Doc, e: ev.EmploymentObserved) -> None:
    _answer(doc, e)["employed"] = e.employed


def _benefit_observed(doc: Doc, e: ev.BenefitObserved) -> None:
    _answer(doc, e).update(on_benefit=e.on_benefit, benefit_kind=e.benefit_kind)


HANDLERS.update({
    ev.FollowUpContactRecorded: _follow_up,
    ev.EmploymentObserved: _employment_observed, ev.BenefitObserved: _benefit_observed,
})


# --- evidence of outcomes (issue 15): an employer's confirmation -----------------------
#   coaching.employer_confirmations[confirmed_on] = {employed, same_employer, hours_per_week}
# Keyed by the day the employer speaks for (coaching records one confirmation per day),
# so a redelivery or another order of arrival gives the same document.


def _employer_confirmed(doc: Doc, e: ev.EmploymentConfirmedByEmployer) -> None:
    _coaching(doc).setdefault("employer_confirmations", {})[_d(e.confirmed_on)] = {
        "employed": e.employed, "same_employer": e.same_employer, "hours_per_week": e.hours_per_week}


HANDLERS[ev.EmploymentConfirmedByEmployer] = _employer_confirmed
