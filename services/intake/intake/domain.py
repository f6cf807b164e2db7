"""Referrals: a municipality hands a client to a re-integration programme.

Plain domain code: no Kafka, HTTP or SQL. Personal data never enters an event in
clear: the client is known by a pseudonym only intake can derive from the BSN, and the
BSN, name and date of birth travel inside the Received event only as a sealed blob
that a per-person key opens (see `privacy`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid

from eventsourcing.domain import Aggregate, event

TRAJECTORY_NAMESPACE = uuid.UUID("d7a3c1f0-8e2b-4a61-9c4d-2b5e7f9a0c13")
OPEN = ("referred", "started")


class ReferralError(Exception):
    """A command that does not fit the referral's state."""

    def __init__(self, state: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"not possible while the referral is {state}")
        self.state, self.allowed = state, allowed


def is_valid_bsn(bsn: str) -> bool:
    """The 11-test (elfproef): weights 9..2 and -1 for the last digit, sum divisible by 11."""
    if len(bsn) != 9 or not bsn.isdigit() or bsn == "000000000":
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(bsn, weights, strict=True)) % 11 == 0


def client_pseudonym(bsn: str, key: bytes) -> uuid.UUID:
    """A stable pseudonymous client id: keyed, so the BSN cannot be guessed back from it."""
    digest = hmac.new(key, bsn.encode(), hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def trajectory_for(referral_id: uuid.UUID) -> uuid.UUID:
    """The trajectory a referral opens, should it be accepted."""
    return uuid.uuid5(TRAJECTORY_NAMESPACE, str(referral_id))


class Referral(Aggregate):
    """A referral of one client to one programme by one municipality."""

    @event("Received")
    def __init__(
        self,
        *,
        client_id: uuid.UUID,
        sealed_person: str,
        municipality: str,
        programme: str,
        benefit: str,
        uwv_registered_on: dt.date | None,
        distance_to_labour_market: str,
        referred_on: dt.date,
        caseworker_id: str,
        route: str,
        wnk_contract_starts_on: dt.date | None,
    ) -> None:
        self.client_id = client_id
        self.sealed_person = sealed_person
        self.municipality = municipality
        self.programme = programme
        self.benefit = benefit
        self.uwv_registered_on = uwv_registered_on
        self.distance_to_labour_market = distance_to_labour_market
        self.referred_on = referred_on
        self.caseworker_id = caseworker_id
        self.route = route
        self.wnk_contract_starts_on = wnk_contract_starts_on
        self.trajectory_id = trajectory_for(self.id)
        self.status = "received"
        self.reasons: list[str] = []
        self.history: list[tuple[str, dt.date]] = []

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @event("Accepted")
    def accept(self, decided_on: dt.date) -> None:
        self.status = "referred"
        self.history.append(("referred", decided_on))

    @event("Rejected")
    def reject(self, reasons: list[str], decided_on: dt.date) -> None:
        self.status = "rejected"
        self.reasons = list(reasons)
        self.history.append(("rejected", decided_on))

    def withdraw(self, withdrawn_on: dt.date, reason: str) -> None:
        if not self.is_open:
            raise ReferralError(self.status, ())
        self._withdraw(withdrawn_on, reason)

    @event("Withdrawn")
    def _withdraw(self, withdrawn_on: dt.date, reason: str) -> None:
        self.status = "withdrawn"
        self.reasons = [reason]
        self.history.append(("withdrawn", withdrawn_on))

    # What the trajectory service reports back: the referral follows its trajectory.
    @event("TrajectoryStarted")
    def trajectory_started(self, on: dt.date) -> None:
        if self.status == "referred":
            self.status = "started"
        self.history.append(("started", on))

    @event("TrajectoryPlaced")
    def trajectory_placed(self, on: dt.date) -> None:
        self.status = "placed"
        self.history.append(("placed", on))

    @event("TrajectoryClosed")
    def trajectory_closed(self, on: dt.date, reason: str) -> None:
        if self.status != "placed":
            self.status = "closed"
        self.reasons = [reason]
        self.history.append(("closed", on))


class OpenReferral(Aggregate):
    """The one open referral of a person to a programme: the 409 for a second one.

    Its id is derived from (client, programme); optimistic concurrency on it keeps two
    simultaneous referrals of the same person from both getting through.
    """

    @staticmethod
    def create_id(client_id: uuid.UUID, programme: str) -> uuid.UUID:
        return uuid.uuid5(TRAJECTORY_NAMESPACE, f"open|{client_id}|{programme}")

    @event("Claimed")
    def __init__(self, client_id: uuid.UUID, programme: str) -> None:
        self.referral_id: uuid.UUID | None = None

    @event("Held")
    def hold(self, referral_id: uuid.UUID) -> None:
        self.referral_id = referral_id

    @event("Released")
    def release(self) -> None:
        self.referral_id = None


class TrajectoryLink(Aggregate):
    """Which referral a trajectory came from, for the trajectory events intake consumes."""

    @event("Linked")
    def __init__(self, id: uuid.UUID, referral_id: uuid.UUID) -> None:
        self.referral_id = referral_id


FILE_NAMESPACE = uuid.UUID("8a1e4f6b-3c2d-4e5f-9a0b-1c2d3e4f5a6b")


class ClientFile(Aggregate):
    """One person's referrals and offers, so that erasing the person reaches all of them
    and the erasure itself is on record."""

    @staticmethod
    def create_id(client_id: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(FILE_NAMESPACE, str(client_id))

    @event("Opened")
    def __init__(self, client_id: uuid.UUID) -> None:
        self.client_id = client_id
        self.entries: dict[str, dict[str, str]] = {}  # aggregate id -> trajectory, municipality, programme
        self.erased_on: dt.date | None = None

    @event("Added")
    def add(self, aggregate_id: uuid.UUID, trajectory_id: uuid.UUID, municipality: str, programme: str) -> None:
        self.entries[str(aggregate_id)] = {"trajectory_id": str(trajectory_id),
                                           "municipality": municipality, "programme": programme}

    @property
    def municipalities(self) -> set[str]:
        return {e["municipality"] for e in self.entries.values()}

    @event("Erased")
    def erase(self, erased_on: dt.date, reason: str) -> None:
        self.erased_on = erased_on
        self.reason = reason
