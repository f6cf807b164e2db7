"""Coaching's use cases."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import ProcessingEvent
from eventsourcing.utils import get_topic

from contracts.envelope import Attributes
from contracts.events import Event, TrajectoryOpened
from contracts.service import ServiceApplication
from coaching.domain import FollowedTrajectory


class CoachingApplication(ServiceApplication):
    """Follows trajectories so it can coach the clients placed in a job."""

    name = "coaching"
    group = "coaching"
    consumes = (TrajectoryOpened,)

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        if isinstance(event, TrajectoryOpened):
            processing_event.collect_events(FollowedTrajectory(
                event.trajectory_id, municipality=event.municipality,
                programme=event.programme, opened_on=event.opened_on,
            ))

    def followed_per_municipality(self) -> dict[str, int]:
        """How many trajectories coaching follows, per municipality (read from its log)."""
        counts: Counter[str] = Counter()
        topic = get_topic(FollowedTrajectory.Followed)
        position = None
        while page := self.recorder.select_notifications(
            position, 1000, topics=[topic], inclusive_of_start=False
        ):
            for notification in page:
                counts[self.mapper.to_domain_event(notification).municipality] += 1
            position = page[-1].id
        return dict(counts)


def integration_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """Coaching publishes nothing of its own yet: following a trajectory is internal."""
    return []
