"""The trajectory service's use cases."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.application import ProcessingEvent
from eventsourcing.application import AggregateNotFoundError

from contracts.envelope import Attributes
from contracts.events import ClientReferred, Event, TrajectoryOpened
from contracts.problems import Problem
from contracts.service import ServiceApplication
from trajectory.domain import Trajectory


class TrajectoryApplication(ServiceApplication):
    """Opens a trajectory for every referral and follows it to placement."""

    name = "trajectory"
    group = "trajectory"
    consumes = (ClientReferred,)

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        if isinstance(event, ClientReferred):
            processing_event.collect_events(Trajectory(
                event.trajectory_id,
                referral_id=event.referral_id,
                client_id=event.client_id,
                municipality=event.municipality,
                programme=event.programme,
                opened_on=event.referred_on,
            ))

    def trajectory(self, trajectory_id: uuid.UUID) -> dict[str, Any]:
        try:
            trajectory: Trajectory = self.repository.get(trajectory_id)
        except AggregateNotFoundError:
            raise Problem(404, "Trajectory not found") from None
        return {
            "trajectory_id": str(trajectory.id),
            "referral_id": str(trajectory.referral_id),
            "municipality": trajectory.municipality,
            "programme": trajectory.programme,
            "state": trajectory.state,
            "opened_on": trajectory.opened_on.isoformat(),
            "version": trajectory.version,
        }


def integration_events(domain_event: Any) -> Sequence[tuple[str, Event]]:
    """Translates the trajectory's domain events into integration events."""
    if isinstance(domain_event, Trajectory.Opened):
        return [(
            domain_event.municipality,
            TrajectoryOpened(
                trajectory_id=domain_event.originator_id,
                referral_id=domain_event.referral_id,
                client_id=domain_event.client_id,
                municipality=domain_event.municipality,
                programme=domain_event.programme,
                opened_on=domain_event.opened_on,
            ),
        )]
    return []
