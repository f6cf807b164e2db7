"""Referrals: recorded and decided on at once, withdrawn, and the person they are about
(for a caller allowed to know). Also the person's file and the (person, programme) slot,
which the job offers share."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from contracts.access import Principal
from contracts.commands import retries_on_conflict
from contracts.idempotency import Answer, RequestKey, recorded, replay
from contracts.problems import Conflict, Gone, NotFound
from intake.config import IntakeConfig
from intake.domain import ClientFile, OpenReferral, Referral, ReferralError, TrajectoryLink, client_pseudonym
from intake.eligibility import Applicant, reasons_against
from intake.privacy import Person, Vault
from intake.usecases.stored import loaded_if, loaded_or_new
from intake.views import referral_summary


@dataclass(frozen=True)
class ReferralInput(Applicant):
    """A referral as sent: what eligibility looks at, whom it is about and who sent it."""

    caseworker_id: str
    person: Person = field(repr=False)


# Every command below that saves runs by the one rule of `contracts.commands`: decided
# again on a version conflict (a concurrent request, the inbox, the timer), Busy when it
# keeps losing, never an error.

class Referrals:
    def __init__(self, store: Any, *, config: IntakeConfig, vault: Vault,
                 clock: Callable[[], dt.date]) -> None:
        self.store, self.config, self.vault, self.clock = store, config, vault, clock

    @retries_on_conflict("referral")
    def refer(self, given: ReferralInput, keyed: RequestKey | None = None) -> Answer:
        """Records a referral and decides on it: created, with its summary, or the first
        answer again (also what a request that lost to its own twin finds on retrying)."""
        if keyed and (first := replay(self.store, keyed)):
            return first
        client_id = client_pseudonym(given.person.bsn, self.config.pseudonym_key)
        referral = Referral(
            client_id=client_id, sealed_person=self.vault.seal(client_id, given.person),
            municipality=given.municipality, programme=given.programme, benefit=given.benefit,
            uwv_registered_on=given.uwv_registered_on,
            distance_to_labour_market=given.distance_to_labour_market,
            referred_on=given.referred_on, caseworker_id=given.caseworker_id,
            route="referral", wnk_contract_starts_on=None,
        )
        reasons = reasons_against(given, self.config.focus2move_municipalities)
        changed: list[Any] = [referral]
        if reasons:
            referral.reject(reasons, self.clock())
        else:
            changed += hold_slot(self.store.repository, client_id, given.programme, referral.id)
            referral.accept(self.clock())
            changed.append(TrajectoryLink(referral.trajectory_id, referral.id))
        changed.append(filed(self.store.repository, client_id, referral.id, referral.trajectory_id,
                             given.municipality, given.programme))
        answer = Answer.created(referral_summary(self.store, referral))
        self.store.save(*changed, *recorded(keyed, answer))
        return answer

    def referral(self, referral_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return referral_summary(self.store, referral_for(self.store.repository, referral_id, caller))

    @retries_on_conflict("referral")
    def withdraw(self, referral_id: uuid.UUID, caller: Principal, *, withdrawn_on: dt.date,
                 reason: str) -> dict[str, Any]:
        referral = referral_for(self.store.repository, referral_id, caller)
        try:
            referral.withdraw(withdrawn_on, reason)
        except ReferralError as error:
            raise Conflict("Referral not open",
                           f"The referral is {error.state}; only an open referral can be withdrawn.",
                           state=error.state, allowed=list(error.allowed)) from None
        self.store.save(referral, *release_slot(self.store.repository, referral))
        return referral_summary(self.store, referral)

    def person(self, referral_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        """Whom a referral is about, for a caller allowed to know; Gone once erased."""
        referral = referral_for(self.store.repository, referral_id, caller)
        person = self.vault.open(referral.client_id, referral.sealed_person)
        if person is None:
            raise Gone("Personal data erased")
        return {"client_id": str(referral.client_id), "bsn": person.bsn, "name": person.name,
                "date_of_birth": person.date_of_birth.isoformat()}


def referral_for(repository: Any, referral_id: uuid.UUID, caller: Principal) -> Referral:
    """The referral, if the caller's tenant may know it exists; else NotFound."""
    referral = loaded_if(repository, referral_id, Referral)
    if referral is None or not caller.sees_municipality(referral.municipality):
        raise NotFound("Referral")
    return referral


def filed(repository: Any, client_id: uuid.UUID, aggregate_id: uuid.UUID, trajectory_id: uuid.UUID,
          municipality: str, programme: str) -> ClientFile:
    """The person's file, with one more referral or offer in it."""
    file = loaded_or_new(repository, ClientFile.create_id(client_id), lambda: ClientFile(client_id))
    file.add(aggregate_id, trajectory_id, municipality, programme)
    return file


def hold_slot(repository: Any, client_id: uuid.UUID, programme: str, referral_id: uuid.UUID) -> list[Any]:
    """The (person, programme) slot, held for this referral; Conflict if another holds it."""
    slot: OpenReferral = loaded_or_new(repository, OpenReferral.create_id(client_id, programme),
                                       lambda: OpenReferral(client_id, programme))
    if slot.referral_id is not None:
        existing: Referral = repository.get(slot.referral_id)
        if existing.is_open:
            raise Conflict("Already referred", "This person has an open referral to this programme.",
                           existing=f"/referrals/{existing.id}")
    slot.hold(referral_id)
    return [slot]


def release_slot(repository: Any, referral: Referral) -> list[Any]:
    """The referral's slot, released, if the referral holds it."""
    slot = loaded_if(repository, OpenReferral.create_id(referral.client_id, referral.programme),
                     OpenReferral)
    if slot is None or slot.referral_id != referral.id:
        return []
    slot.release()
    return [slot]
