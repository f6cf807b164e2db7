"""LBU (Loon Boven Uitkering, since 2002): a new applicant is offered a job instead of a
benefit — a temporary contract at WNK. Who refuses, and neither starts the contract nor
comes back for a benefit within the response period, joins the "unknown destination"
cohort the municipality wants to map; coming back later takes them out of it again.

Plain domain code: no Kafka, HTTP or SQL.
"""

from __future__ import annotations

import datetime as dt
import uuid

from eventsourcing.domain import Aggregate, event

from intake.domain import ReferralError

DEFAULT_RESPONSE_WEEKS = 13


class JobOffer(Aggregate):
    """A job offered to a new applicant instead of a benefit."""

    @event("Made")
    def __init__(self, *, trajectory_id: uuid.UUID, client_id: uuid.UUID, sealed_person: str,
                 municipality: str, offered_on: dt.date, caseworker_id: str) -> None:
        self.trajectory_id = trajectory_id  # reserved: the Focus2Move trajectory if accepted
        self.client_id = client_id
        self.sealed_person = sealed_person
        self.municipality = municipality
        self.offered_on = offered_on
        self.caseworker_id = caseworker_id
        self.state = "offered"
        self.respond_by: dt.date | None = None
        self.referral_id: uuid.UUID | None = None
        self.history: list[tuple[str, dt.date]] = [("offered", offered_on)]

    def _require(self, *states: str) -> None:
        if self.state not in states:
            raise ReferralError(self.state, self.allowed_next())

    def allowed_next(self) -> tuple[str, ...]:
        return {
            "offered": ("acceptance", "refusal"),
            "refused": ("acceptance", "return"),
            "destination-unknown": ("return",),
        }.get(self.state, ())

    def accept(self, accepted_on: dt.date, contract_starts_on: dt.date, referral_id: uuid.UUID) -> None:
        self._require("offered", "refused")
        self._accepted(accepted_on, contract_starts_on, referral_id)

    @event("Accepted")
    def _accepted(self, accepted_on: dt.date, contract_starts_on: dt.date,
                  referral_id: uuid.UUID) -> None:
        self.state = "accepted"
        self.referral_id = referral_id
        self.history.append(("accepted", accepted_on))

    def refuse(self, refused_on: dt.date, response_weeks: int) -> None:
        self._require("offered")
        self._refused(refused_on, refused_on + dt.timedelta(weeks=response_weeks))

    @event("Refused")
    def _refused(self, refused_on: dt.date, respond_by: dt.date) -> None:
        self.state = "refused"
        self.respond_by = respond_by
        self.history.append(("refused", refused_on))

    def is_overdue(self, today: dt.date) -> bool:
        return self.state == "refused" and self.respond_by is not None and today > self.respond_by

    def mark_destination_unknown(self, today: dt.date) -> None:
        if not self.is_overdue(today):
            raise ReferralError(self.state, self.allowed_next())
        self._destination_unknown(self.respond_by)

    @event("DestinationUnknown")
    def _destination_unknown(self, since: dt.date) -> None:
        self.state = "destination-unknown"
        self.history.append(("destination-unknown", since))

    def record_return(self, returned_on: dt.date) -> None:
        self._require("refused", "destination-unknown")
        self._returned(returned_on, self.state == "destination-unknown")

    @event("Returned")
    def _returned(self, returned_on: dt.date, from_unknown_destination: bool) -> None:
        self.state = "returned-for-benefit"
        self.history.append(("returned-for-benefit", returned_on))


class RefusedOffers(Aggregate):
    """The offers waiting on a response deadline, so the timer need not scan every offer.

    One per municipality (id derived from it); entries leave when the deadline passes or
    the applicant responds.
    """

    @staticmethod
    def create_id(municipality: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"tweespoor:lbu:refused:{municipality}")

    @event("Opened")
    def __init__(self, municipality: str) -> None:
        self.pending: dict[str, str] = {}  # offer id -> respond-by date (ISO)

    @event("Watched")
    def watch(self, offer_id: uuid.UUID, respond_by: dt.date) -> None:
        self.pending[str(offer_id)] = respond_by.isoformat()

    @event("Unwatched")
    def unwatch(self, offer_id: uuid.UUID) -> None:
        self.pending.pop(str(offer_id), None)

    def due(self, today: dt.date) -> list[uuid.UUID]:
        return [uuid.UUID(o) for o, by in self.pending.items() if dt.date.fromisoformat(by) < today]
