"""What the trajectory service tells the others: its domain events, translated.

The one place where a domain event becomes integration events; the outbox relay
publishes them and the webhook dispatcher notifies providers of the same ones (with
the same CloudEvent ids). Each trajectory fact names its municipality, so translation
needs nothing but the event. Of the reference data, the relay also publishes what the
figures are weighed against (budgets, yearly volumes, awarded contracts with their
tariffs); subscriptions stay internal.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from contracts.events import (
    AssignmentRefused, AssignmentWaitlisted, BudgetSet, ContractAwarded, ContractEnded,
    ContractExtended, ContractStarted, Event, MediationAttemptFailed, ObstacleIdentified,
    ObstacleResolved, PlacedInJob, PlanAgreed, ProgrammeVolumeSet, ProviderAssigned,
    ProviderReleased, SchoolingEnded, SchoolingStarted, TrajectoryClosed, TrajectoryOpened,
    TrajectoryReopened,
)
from contracts.events import Programme as ProgrammeSlug
from trajectory.contracting import NAMESPACE, Programme, ProviderContract, Register
from trajectory.domain import Trajectory

SYSTEM = "tweespoor-trajectory"


def integration_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """(municipality, integration event) pairs for one domain event; none for the rest."""
    if not isinstance(domain_event, (Trajectory.Opened, Trajectory.Fact)):
        return []
    municipality = domain_event.municipality
    return [(municipality, e) for e in _translate(domain_event, domain_event.originator_id)]


def _translate(e: Any, trajectory_id: Any) -> list[Event]:
    t = {"trajectory_id": trajectory_id}
    match e:
        case Trajectory.Opened():
            return [TrajectoryOpened(**t, referral_id=e.referral_id, client_id=e.client_id,
                                     municipality=e.municipality, programme=e.programme,
                                     opened_on=e.opened_on)]
        case Trajectory.Assigned():
            return [ProviderAssigned(**t, provider=e.provider, discipline=e.discipline,
                                     assigned_on=e.assigned_on)]
        case Trajectory.Waitlisted():
            return [AssignmentWaitlisted(**t, discipline=e.discipline, waitlisted_on=e.waitlisted_on)]
        case Trajectory.Refused():
            return [AssignmentRefused(**t, discipline=e.discipline, refused_on=e.refused_on,
                                      reason=e.reason)]
        case Trajectory.PlanAgreed():
            return [PlanAgreed(**t, agreed_on=e.agreed_on, disciplines=tuple(e.disciplines))]
        case Trajectory.DisciplineCompleted():
            return [ProviderReleased(**t, provider=e.provider, discipline=e.discipline,
                                     released_on=e.completed_on, reason="completed")]
        case Trajectory.ContractStarted():
            return [ContractStarted(**t, employer=e.employer, starts_on=e.starts_on, ends_on=e.ends_on)]
        case Trajectory.ContractExtended():
            return [ContractExtended(**t, employer=e.employer, extended_on=e.extended_on,
                                     ends_on=e.ends_on)]
        case Trajectory.ContractEnded():
            return [ContractEnded(**t, employer=e.employer, ended_on=e.ended_on, reason=e.reason)]
        case Trajectory.ObstacleIdentified():
            return [ObstacleIdentified(**t, obstacle_id=e.obstacle_id, kind=e.kind,
                                       identified_on=e.identified_on, discipline=e.discipline)]
        case Trajectory.ObstacleResolved():
            return [ObstacleResolved(**t, obstacle_id=e.obstacle_id, outcome=e.outcome,
                                     resolved_on=e.resolved_on)]
        case Trajectory.MediationFailed():
            return [MediationAttemptFailed(**t, attempted_on=e.attempted_on, reason=e.reason)]
        case Trajectory.SchoolingStarted():
            return [SchoolingStarted(**t, starts_on=e.starts_on, relevance=e.relevance,
                                     occupation=e.occupation)]
        case Trajectory.SchoolingEnded():
            return [SchoolingEnded(**t, ended_on=e.ended_on, outcome=e.outcome)]
        case Trajectory.Placed():
            placed = PlacedInJob(**t, municipality=e.municipality, employer=e.employer,
                                 hours_per_week=e.hours_per_week, contract_type=e.contract_type,
                                 starts_on=e.starts_on)
            return [placed, *_loose_ends(e, t, e.starts_on, "regular-job"),
                    TrajectoryClosed(**t, reason="placed", closed_on=e.starts_on)]
        case Trajectory.Closed():
            return [*_loose_ends(e, t, e.closed_on, "trajectory-closed"),
                    TrajectoryClosed(**t, reason=e.reason, closed_on=e.closed_on)]
        case Trajectory.Reopened():
            return [TrajectoryReopened(**t, reopened_on=e.reopened_on, reason=e.reason)]
    return []


def _loose_ends(e: Any, t: dict[str, Any], on: Any, contract_reason: str) -> list[Event]:
    """What ends with a trajectory, each as its own fact: the temporary contract, and
    every provider's place (so capacity figures downstream need no special case)."""
    ended: list[Event] = []
    if e.ended_contract:
        ended.append(ContractEnded(**t, employer=e.ended_contract, ended_on=on, reason=contract_reason))
    ended += [ProviderReleased(**t, provider=provider, discipline=discipline, released_on=on,
                               reason="trajectory-ended")
              for discipline, provider in sorted(e.released.items())]
    return ended


# The tender's reference data goes out under its lead buyer, Alkmaar: it is the five
# municipalities' joint contract, not one trajectory's tenant.
LEAD_MUNICIPALITY = "alkmaar"
_PROGRAMME_IDS = {Programme.create_id(slug): slug for slug in ProgrammeSlug.__args__}  # type: ignore[attr-defined]


def reference_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """The tender's budgets, yearly volumes and awarded contracts, for reporting to weigh
    the figures against. Providers get no webhook for these (see `usecases.notifications`)."""
    e = domain_event
    match e:
        case Register.Seeded():
            events: list[Event] = [
                BudgetSet(**_about(uuid.uuid5(NAMESPACE, f"budget|{b['slug']}")), budget=b["slug"],
                          title=b["title"], programmes=tuple(b["programmes"]), total_eur=b["total_eur"],
                          sources_eur=b["sources_eur"], shares_eur=b["shares_eur"])
                for b in e.budgets]
        case Programme.Established():
            events = [ProgrammeVolumeSet(**_about(e.originator_id), programme=e.slug,
                                         yearly_volume=e.yearly_volume, set_on=e.starts_on)]
        case Programme.VolumeChanged() if e.originator_id in _PROGRAMME_IDS:
            events = [ProgrammeVolumeSet(**_about(e.originator_id), programme=_PROGRAMME_IDS[e.originator_id],
                                         yearly_volume=e.yearly_volume, set_on=e.on)]
        case ProviderContract.Awarded():
            events = [ContractAwarded(**_about(e.originator_id), provider=e.provider,
                                      programme=e.programme, discipline=e.discipline,
                                      municipalities=tuple(e.municipalities), starts_on=e.starts_on,
                                      ends_on=e.ends_on, places=e.places, tariff_eur=e.tariff_eur)]
        case _:
            return []
    return [(LEAD_MUNICIPALITY, event) for event in events]


def _about(stream_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """The key of a reference event: the id of the budget, programme or contract it is
    about, in the wire field every event is keyed by (`trajectory_id`, `contracts.events`)."""
    return {"trajectory_id": stream_id}


def published_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """What the outbox relay publishes: the trajectory facts and the reference data."""
    return [*integration_events(domain_event), *reference_events(domain_event)]
