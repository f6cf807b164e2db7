"""Intake's use cases: the service layer between the API and the referral aggregate."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from contracts.events import ClientReferred, Event
from contracts.problems import Problem
from contracts.service import ServiceApplication
from intake.domain import Referral, client_pseudonym


class IntakeApplication(ServiceApplication):
    """Receives referrals from the municipal case systems."""

    name = "intake"
    group = "intake"

    def __init__(self, env: dict[str, str] | None = None, *, pseudonym_key: bytes) -> None:
        super().__init__(env)
        self.pseudonym_key = pseudonym_key

    def refer(
        self,
        *,
        bsn: str,
        municipality: str,
        programme: str,
        benefit: str,
        referred_on: dt.date,
        caseworker_id: str,
    ) -> dict[str, Any]:
        referral = Referral(
            trajectory_id=uuid.uuid4(),
            client_id=client_pseudonym(bsn, self.pseudonym_key),
            municipality=municipality,
            programme=programme,
            benefit=benefit,
            referred_on=referred_on,
            caseworker_id=caseworker_id,
        )
        self.save(referral)
        return self.referral(referral.id)

    def referral(self, referral_id: uuid.UUID) -> dict[str, Any]:
        try:
            referral: Referral = self.repository.get(referral_id)
        except AggregateNotFoundError:
            raise Problem(404, "Referral not found") from None
        return {
            "referral_id": str(referral.id),
            "trajectory_id": str(referral.trajectory_id),
            "client_id": str(referral.client_id),
            "municipality": referral.municipality,
            "programme": referral.programme,
            "status": referral.status,
            "referred_on": referral.referred_on.isoformat(),
        }


def integration_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """Translates intake's domain events into what other services may know of them."""
    if isinstance(domain_event, Referral.Received):
        return [(
            domain_event.municipality,
            ClientReferred(
                trajectory_id=domain_event.trajectory_id,
                referral_id=domain_event.originator_id,
                client_id=domain_event.client_id,
                municipality=domain_event.municipality,
                programme=domain_event.programme,
                benefit=domain_event.benefit,
                referred_on=domain_event.referred_on,
            ),
        )]
    return []
