"""LBU, a job instead of a benefit: offers made, accepted (a Focus2Move trajectory at WNK),
refused or returned from, and the timer that moves refused offers past their deadline
into the unknown-destination cohort."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from contracts.access import Principal
from contracts.commands import Busy, retries_on_conflict, retry_on_conflict
from contracts.idempotency import Answer, RequestKey, recorded, replay
from contracts.problems import Conflict, NotFound
from intake.config import IntakeConfig
from intake.domain import Referral, ReferralError, TrajectoryLink, client_pseudonym
from intake.lbu import JobOffer, RefusedOffers
from intake.privacy import Person, Vault
from intake.usecases.referrals import filed, hold_slot
from intake.usecases.stored import loaded_if, loaded_or_new
from intake.views import offer_summary


class JobOffers:
    def __init__(self, store: Any, *, config: IntakeConfig, vault: Vault,
                 clock: Callable[[], dt.date]) -> None:
        self.store, self.config, self.vault, self.clock = store, config, vault, clock

    @retries_on_conflict("job offer")
    def offer_job(self, person: Person, *, municipality: str, offered_on: dt.date,
                  caseworker_id: str, keyed: RequestKey | None = None) -> Answer:
        if keyed and (first := replay(self.store, keyed)):
            return first
        client_id = client_pseudonym(person.bsn, self.config.pseudonym_key)
        offer = JobOffer(trajectory_id=uuid.uuid4(), client_id=client_id,
                         sealed_person=self.vault.seal(client_id, person),
                         municipality=municipality, offered_on=offered_on,
                         caseworker_id=caseworker_id)
        answer = Answer.created(offer_summary(self.store, offer))
        self.store.save(offer, *recorded(keyed, answer),
                        filed(self.store.repository, client_id, offer.id, offer.trajectory_id,
                              municipality, "lbu"))
        return answer

    def job_offer(self, offer_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return offer_summary(self.store, self._offer_for(offer_id, caller))

    @retries_on_conflict("job offer")
    def accept_offer(self, offer_id: uuid.UUID, caller: Principal, *, accepted_on: dt.date,
                     contract_starts_on: dt.date) -> dict[str, Any]:
        """The applicant takes the job: a Focus2Move trajectory starts at WNK."""
        offer = self._offer_for(offer_id, caller)
        referral = Referral(
            client_id=offer.client_id, sealed_person=offer.sealed_person,
            municipality=offer.municipality, programme="focus2move", benefit="none",
            uwv_registered_on=None, distance_to_labour_market="unknown",
            referred_on=accepted_on, caseworker_id=offer.caseworker_id,
            route="lbu", wnk_contract_starts_on=contract_starts_on,
        )
        with _refused_by_state():
            offer.accept(accepted_on, contract_starts_on, referral.id)
        repository = self.store.repository
        slot = hold_slot(repository, offer.client_id, "focus2move", referral.id)
        referral.accept(accepted_on)
        self.store.save(offer, referral, *slot, TrajectoryLink(referral.trajectory_id, referral.id),
                        *self._unwatch(offer), filed(repository, offer.client_id, referral.id,
                                                     referral.trajectory_id, offer.municipality, "focus2move"))
        return offer_summary(self.store, offer)

    @retries_on_conflict("job offer")
    def refuse_offer(self, offer_id: uuid.UUID, caller: Principal, *, refused_on: dt.date) -> dict[str, Any]:
        offer = self._offer_for(offer_id, caller)
        with _refused_by_state():
            offer.refuse(refused_on, self.config.lbu_response_weeks)
        watchlist = self.watchlist(offer.municipality)
        watchlist.watch(offer.id, offer.respond_by)
        self.store.save(offer, watchlist)
        return offer_summary(self.store, offer)

    @retries_on_conflict("job offer")
    def record_return(self, offer_id: uuid.UUID, caller: Principal, *, returned_on: dt.date) -> dict[str, Any]:
        """The applicant came back for a benefit (before or after the deadline)."""
        offer = self._offer_for(offer_id, caller)
        with _refused_by_state():
            offer.record_return(returned_on)
        self.store.save(offer, *self._unwatch(offer))
        return offer_summary(self.store, offer)

    def mark_unknown_destinations(self, municipalities: Sequence[str]) -> int:
        """The timer: refused offers past their deadline join the unknown cohort, once.

        Safe to run twice or in two processes: each offer and watchlist changes under
        optimistic concurrency, so a second run finds nothing due or loses the race (and
        stops: the run that won will finish the job).
        """
        today, marked = self.clock(), 0
        for municipality in municipalities:
            watchlist = self.watchlist(municipality)
            for offer_id in watchlist.due(today):
                offer: JobOffer = self.store.repository.get(offer_id)
                overdue = offer.is_overdue(today)
                if overdue:
                    offer.mark_destination_unknown(today)
                watchlist.unwatch(offer_id)
                try:
                    retry_on_conflict(lambda o=offer: self.store.save(o, watchlist),
                                      what="refused offers", attempts=1)
                except Busy:
                    return marked  # another run is at it; it will finish the job
                marked += overdue
        return marked

    def watchlist(self, municipality: str) -> RefusedOffers:
        return loaded_or_new(self.store.repository, RefusedOffers.create_id(municipality),
                             lambda: RefusedOffers(municipality))

    def _unwatch(self, offer: JobOffer) -> list[Any]:
        watchlist = self.watchlist(offer.municipality)
        if str(offer.id) not in watchlist.pending:
            return []
        watchlist.unwatch(offer.id)
        return [watchlist]

    def _offer_for(self, offer_id: uuid.UUID, caller: Principal) -> JobOffer:
        offer = loaded_if(self.store.repository, offer_id, JobOffer)
        if offer is None or not caller.sees_municipality(offer.municipality):
            raise NotFound("Job offer")
        return offer


@contextlib.contextmanager
def _refused_by_state() -> Iterator[None]:
    """A command that does not fit the offer's state: a Conflict naming the state."""
    try:
        yield
    except ReferralError as error:
        raise Conflict("Not possible now", f"The offer is {error.state}.", state=error.state,
                       allowed=list(error.allowed)) from None
