"""Referrals: a municipality hands a client to a re-integration programme.

Plain domain code: no Kafka, HTTP or SQL. Personal data never enters an event here;
the client is known by a pseudonym that only intake can derive from the BSN.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid

from eventsourcing.domain import Aggregate, event


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


class Referral(Aggregate):
    """A referral of one client to one programme by one municipality."""

    @event("Received")
    def __init__(
        self,
        *,
        trajectory_id: uuid.UUID,
        client_id: uuid.UUID,
        municipality: str,
        programme: str,
        benefit: str,
        referred_on: dt.date,
        caseworker_id: str,
    ) -> None:
        self.trajectory_id = trajectory_id
        self.client_id = client_id
        self.municipality = municipality
        self.programme = programme
        self.benefit = benefit
        self.referred_on = referred_on
        self.caseworker_id = caseworker_id
        self.status = "referred"
