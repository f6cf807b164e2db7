"""Intake's application: its event store, the inbox policy (what trajectory tells intake),
and one place for callers to reach the use cases (`intake.usecases`).

Methods take primitives and return plain dicts with no personal data; the only way
back from a pseudonym to a person is `person()`, for callers allowed to see it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent

from contracts.access import Principal
from contracts.envelope import Attributes
from contracts.events import Event, PlacedInJob, TrajectoryClosed, TrajectoryOpened
from contracts.idempotency import Answer, RequestKey
from contracts.service import ServiceApplication
from intake.config import IntakeConfig
from intake.domain import Referral, TrajectoryLink
from intake.integration import IntakeTranslation
from intake.lbu import RefusedOffers
from intake.privacy import KeyStore, Person, Vault
from intake.registry import EmploymentRegistry
from intake.registry_files import FileExchangeRegistry
from intake.tables import PersonKeys
from intake.usecases.employment_registry import EmploymentRegistryExchange
from intake.usecases.erasure import Erasure
from intake.usecases.job_offers import JobOffers
from intake.usecases.referrals import ReferralInput, Referrals, release_slot

__all__ = ["IntakeApplication", "IntakeConfig", "ReferralInput"]


class IntakeApplication(ServiceApplication):
    """Receives referrals and LBU job offers from the municipal case systems."""

    name = "intake"
    group = "intake"
    consumes = (TrajectoryOpened, PlacedInJob, TrajectoryClosed)
    # The employment registry's port: files out and back (see `intake.registry`).
    registry: EmploymentRegistry = FileExchangeRegistry()

    def __init__(self, env: dict[str, str] | None = None, *, config: IntakeConfig,
                 keys: KeyStore | None = None,
                 clock: Callable[[], dt.date] = dt.date.today) -> None:
        super().__init__(env)
        self.config = config
        self.clock = clock
        self.vault = Vault(keys or PersonKeys(self.recorder))
        needs = {"config": config, "vault": self.vault, "clock": clock}
        self.referrals = Referrals(self, **needs)
        self.erasure = Erasure(self, **needs)
        self.job_offers = JobOffers(self, **needs)
        self.registry_exchange = EmploymentRegistryExchange(self, registry=self.registry, **needs)
        self.translation = IntakeTranslation(self.repository)

    # --- what trajectory tells intake --------------------------------------------------

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        try:
            link: TrajectoryLink = self.repository.get(event.trajectory_id)
        except AggregateNotFoundError:
            return  # a trajectory intake did not open: nothing to follow
        referral: Referral = self.repository.get(link.referral_id)
        if isinstance(event, TrajectoryOpened):
            referral.trajectory_started(event.opened_on)
        elif isinstance(event, PlacedInJob):
            referral.trajectory_placed(event.starts_on)
        elif isinstance(event, TrajectoryClosed):
            referral.trajectory_closed(event.closed_on, event.reason)
            processing_event.collect_events(*release_slot(self.repository, referral))
        processing_event.collect_events(referral)

    # --- what intake tells the others (`intake.integration`) ---------------------------

    def integration_events(self, domain_event: Any) -> Sequence[tuple[str, Event]]:
        return self.translation.integration_events(domain_event)

    # --- referrals (`intake.usecases.referrals`) ---------------------------------------

    def refer(self, referral: ReferralInput, keyed: RequestKey | None = None) -> Answer:
        return self.referrals.refer(referral, keyed)

    def referral(self, referral_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self.referrals.referral(referral_id, caller)

    def withdraw(self, referral_id: uuid.UUID, caller: Principal, **withdrawal: Any) -> dict[str, Any]:
        return self.referrals.withdraw(referral_id, caller, **withdrawal)

    def person(self, referral_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self.referrals.person(referral_id, caller)

    # --- erasure (`intake.usecases.erasure`) -------------------------------------------

    def erase_person_of(self, referral_id: uuid.UUID, caller: Principal, *, reason: str) -> dict[str, Any]:
        return self.erasure.erase_person_of(referral_id, caller, reason=reason)

    def erase(self, client_id: uuid.UUID, *, reason: str) -> dict[str, Any]:
        return self.erasure.erase(client_id, reason=reason)

    def erase_expired(self) -> int:
        return self.erasure.erase_expired()

    # --- LBU job offers and their timer (`intake.usecases.job_offers`) -----------------

    def offer_job(self, person: Person, **offer: Any) -> Answer:
        return self.job_offers.offer_job(person, **offer)

    def job_offer(self, offer_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self.job_offers.job_offer(offer_id, caller)

    def accept_offer(self, offer_id: uuid.UUID, caller: Principal, **acceptance: Any) -> dict[str, Any]:
        return self.job_offers.accept_offer(offer_id, caller, **acceptance)

    def refuse_offer(self, offer_id: uuid.UUID, caller: Principal, **refusal: Any) -> dict[str, Any]:
        return self.job_offers.refuse_offer(offer_id, caller, **refusal)

    def record_return(self, offer_id: uuid.UUID, caller: Principal, **returned: Any) -> dict[str, Any]:
        return self.job_offers.record_return(offer_id, caller, **returned)

    def mark_unknown_destinations(self, municipalities: Sequence[str]) -> int:
        return self.job_offers.mark_unknown_destinations(municipalities)

    def _watchlist(self, municipality: str) -> RefusedOffers:
        return self.job_offers.watchlist(municipality)

    # --- the employment registry (`intake.usecases.employment_registry`) ---------------

    def build_registry_request(self, caller: Principal, **order: Any) -> tuple[dict[str, Any], bytes] | None:
        return self.registry_exchange.build_registry_request(caller, **order)

    def registry_request(self, request_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self.registry_exchange.registry_request(request_id, caller)

    def registry_file(self, request_id: uuid.UUID, caller: Principal, kind: str) -> bytes:
        return self.registry_exchange.registry_file(request_id, caller, kind)

    def import_registry_answers(self, caller: Principal, file: bytes) -> dict[str, Any]:
        return self.registry_exchange.import_registry_answers(caller, file)
