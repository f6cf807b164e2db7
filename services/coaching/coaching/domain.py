"""Coaching's own view of the trajectories it may come to coach.

Plain domain code: no Kafka, HTTP or SQL. The one-year coaching plan builds on this.
"""

from __future__ import annotations

import datetime as dt
import uuid

from eventsourcing.domain import Aggregate, event


class FollowedTrajectory(Aggregate):
    """A trajectory coaching knows of: whose it is (municipality) and in which programme,
    so that a later placement can start a plan scoped to the right municipality."""

    @event("Followed")
    def __init__(self, id: uuid.UUID, *, municipality: str, programme: str,
                 opened_on: dt.date) -> None:
        self.municipality = municipality
        self.programme = programme
        self.opened_on = opened_on
