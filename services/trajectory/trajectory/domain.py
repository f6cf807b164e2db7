"""Trajectories: what happens to a referred client between referral and placement.

Plain domain code: no Kafka, HTTP or SQL.
"""

from __future__ import annotations

import datetime as dt
import uuid

from eventsourcing.domain import Aggregate, event


class Trajectory(Aggregate):
    """One client's trajectory in one programme; its id is the one intake gave it."""

    @event("Opened")
    def __init__(
        self,
        id: uuid.UUID,
        *,
        referral_id: uuid.UUID,
        client_id: uuid.UUID,
        municipality: str,
        programme: str,
        opened_on: dt.date,
    ) -> None:
        self.referral_id = referral_id
        self.client_id = client_id
        self.municipality = municipality
        self.programme = programme
        self.opened_on = opened_on
        self.state = "open"
