"""The one place where intake's domain events become integration events: what the other
services may know of referrals, erasures, job offers and the registry's answers (never
personal data beyond the pseudonym)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from contracts.events import (
    BenefitObserved, ClientReferred, DestinationUnknown, EmploymentObserved, Event, JobOfferAccepted,
    JobOfferMade, JobOfferRefused, PersonErased, ReferralRejected, ReferralWithdrawn, ReturnedForBenefit,
)
from intake.domain import ClientFile, Referral
from intake.lbu import JobOffer
from intake.registry import POINTS, RegistryRequest, observation_id


class IntakeTranslation:
    """Translates each stored domain event, reading its aggregate as of that event."""

    def __init__(self, repository: Any) -> None:
        self.repository = repository

    def integration_events(self, domain_event: Any) -> Sequence[tuple[str, Event]]:
        """Translates intake's domain events into what other services may know of them."""
        kind = type(domain_event)
        if kind in (Referral.Accepted, Referral.Rejected, Referral.Withdrawn):
            referral: Referral = self._as_of(domain_event)
            return [(referral.municipality, _referral_event(referral, domain_event))]
        if kind is ClientFile.Erased:
            file: ClientFile = self._as_of(domain_event)
            return [(entry["municipality"], PersonErased(
                trajectory_id=uuid.UUID(entry["trajectory_id"]), client_id=file.client_id,
                municipality=entry["municipality"], erased_on=domain_event.erased_on,
                reason=domain_event.reason)) for _, entry in sorted(file.entries.items())]
        if kind in (JobOffer.Made, JobOffer.Accepted, JobOffer.Refused,
                    JobOffer.DestinationUnknown, JobOffer.Returned):
            offer: JobOffer = self._as_of(domain_event)
            return [(offer.municipality, _offer_event(offer, domain_event))]
        if kind is RegistryRequest.Answered:
            request: RegistryRequest = self._as_of(domain_event)
            return [(request.municipality, e) for answer in domain_event.answers
                    for e in _observed(request, answer)]
        return []

    def _as_of(self, domain_event: Any) -> Any:
        """The aggregate as it was just after `domain_event`."""
        return self.repository.get(domain_event.originator_id, version=domain_event.originator_version)


def _referral_event(referral: Referral, domain_event: Any) -> Event:
    common = {"trajectory_id": referral.trajectory_id, "referral_id": referral.id,
              "municipality": referral.municipality}
    if isinstance(domain_event, Referral.Accepted):
        return ClientReferred(**common, client_id=referral.client_id, programme=referral.programme,
                              benefit=referral.benefit, referred_on=referral.referred_on,
                              route=referral.route,
                              wnk_contract_starts_on=referral.wnk_contract_starts_on)
    if isinstance(domain_event, Referral.Rejected):
        return ReferralRejected(**common, client_id=referral.client_id, programme=referral.programme,
                                reason_code=referral.reasons[0], reason_codes=tuple(referral.reasons),
                                rejected_on=domain_event.decided_on)
    return ReferralWithdrawn(**common, withdrawn_on=domain_event.withdrawn_on,
                             reason=domain_event.reason)


def _offer_event(offer: JobOffer, domain_event: Any) -> Event:
    common = {"trajectory_id": offer.trajectory_id, "offer_id": offer.id,
              "client_id": offer.client_id, "municipality": offer.municipality}
    match domain_event:
        case JobOffer.Made():
            return JobOfferMade(**common, offered_on=offer.offered_on)
        case JobOffer.Accepted():
            return JobOfferAccepted(**common, accepted_on=domain_event.accepted_on,
                                    contract_starts_on=domain_event.contract_starts_on)
        case JobOffer.Refused():
            return JobOfferRefused(**common, refused_on=domain_event.refused_on,
                                   respond_by=domain_event.respond_by)
        case JobOffer.DestinationUnknown():
            return DestinationUnknown(**common, since=domain_event.since)
    return ReturnedForBenefit(**common, returned_on=domain_event.returned_on,
                              from_unknown_destination=domain_event.from_unknown_destination)


def _observed(request: RegistryRequest, answer: dict[str, Any]) -> tuple[Event, Event]:
    """One answer line: what the registry and the benefit administration observed."""
    line = request.lines[int(answer["line"])]
    common = {"trajectory_id": uuid.UUID(line["trajectory_id"]),
              "observation_id": observation_id(request.id, int(answer["line"])),
              "client_id": uuid.UUID(line["client_id"]), "municipality": request.municipality,
              "offer_id": uuid.UUID(line["offer_id"]) if line["offer_id"] else None,
              "cohort": line["cohort"], "point": line["point"],
              "months_after": POINTS[line["point"]][1],
              "reference_date": dt.date.fromisoformat(line["reference_date"]),
              "observed_on": dt.date.fromisoformat(line["observe_on"]),
              "period_start": dt.date.fromisoformat(answer["period_start"]),
              "period_end": dt.date.fromisoformat(answer["period_end"])}
    return (EmploymentObserved(**common, employed=answer["employed"], employer_id=answer["employer_id"],
                               hours_per_week=answer["hours_per_week"]),
            BenefitObserved(**common, on_benefit=answer["on_benefit"], benefit_kind=answer["benefit_kind"]))
