"""The assignment desk: providers assigned within capacity (part of `TrajectoryApplication`).

The desk follows the service's own log. Every decision derives from a recorded fact — a
trajectory opened, a plan or an obstacle that needs a discipline, a place that freed, a
contract with more places — and is recorded in one transaction with the desk's
position, so each fact is decided once, even when the desk runs twice or in two
processes (the second loses on the tracking record and reads on). Consuming a referral
therefore never waits on the capacity of a discipline: opening is one transaction,
assignment the next.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING, Any

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Tracking

from trajectory.contracting import DisciplineCapacity, ProviderContract, available
from trajectory.domain import Trajectory

if TYPE_CHECKING:
    from trajectory.application import TrajectoryApplication

log = logging.getLogger(__name__)

DESK = "desk"  # the tracking name of the desk's position in the log
BATCH = 200  # facts read per round; a round that read fewer has caught up


class _Loaded:
    """The aggregates one decision touches, each loaded once, saved together."""

    def __init__(self, app: TrajectoryApplication) -> None:
        self.app = app
        self.aggregates: dict[uuid.UUID, Aggregate] = {}

    def trajectory(self, trajectory_id: uuid.UUID) -> Trajectory | None:
        if trajectory_id not in self.aggregates:
            try:
                self.aggregates[trajectory_id] = self.app.repository.get(trajectory_id)
            except AggregateNotFoundError:
                return None
        return self.aggregates[trajectory_id]  # type: ignore[return-value]

    def capacity(self, programme: str, discipline: str, *, create: bool = True) -> DisciplineCapacity | None:
        capacity_id = DisciplineCapacity.create_id(programme, discipline)
        if capacity_id not in self.aggregates:
            try:
                self.aggregates[capacity_id] = self.app.repository.get(capacity_id)
            except AggregateNotFoundError:
                if not create:
                    return None
                self.aggregates[capacity_id] = DisciplineCapacity(programme, discipline)
        return self.aggregates[capacity_id]  # type: ignore[return-value]


class AssignmentDesk:
    """Decides who takes on which discipline of which trajectory, in log order."""

    def run_desk(self: TrajectoryApplication, limit: int = BATCH) -> int:
        """Decides on the facts recorded since its position; returns how many it read."""
        position = self.recorder.max_tracking_id(DESK) or 0
        notifications = self.recorder.select_notifications(position, limit, inclusive_of_start=False)
        skipped = None
        for notification in notifications:
            domain_event = self.mapper.to_domain_event(notification)
            with self.writes:
                loaded = _Loaded(self)
                if not self._decide(domain_event, loaded):
                    skipped = notification.id
                    continue
                processing = ProcessingEvent[uuid.UUID](tracking=Tracking(DESK, notification.id))
                processing.collect_events(*loaded.aggregates.values())
                try:
                    self._record(processing)
                except IntegrityError:  # another desk decided it, or an aggregate moved on
                    return 0
                self._take_snapshots(processing)
                skipped = None
        if skipped is not None:
            try:
                self.recorder.insert_tracking(Tracking(DESK, skipped))
            except IntegrityError:
                return 0
        return len(notifications)

    def _decide(self: TrajectoryApplication, e: Any, loaded: _Loaded) -> bool:
        """Collects what follows from one fact; False when nothing does."""
        match e:
            case Trajectory.Opened():
                programme = self.programme(e.programme)
                return self._request(loaded, e.originator_id, programme.entry_discipline, e.opened_on)
            case Trajectory.PlanAgreed():
                return any([self._request(loaded, e.originator_id, d, e.agreed_on) for d in e.disciplines])
            case Trajectory.ObstacleIdentified() if e.discipline:
                return self._request(loaded, e.originator_id, e.discipline, e.identified_on)
            case Trajectory.Reopened():
                trajectory = loaded.trajectory(e.originator_id)
                discipline = self.programme(trajectory.programme).reopen_discipline  # type: ignore[union-attr]
                return self._request(loaded, e.originator_id, discipline, e.reopened_on)
            case Trajectory.DisciplineCompleted():
                return self._free(loaded, e.originator_id, {e.discipline: e.provider}, [], e.completed_on)
            case Trajectory.Placed():
                return self._free(loaded, e.originator_id, e.released, e.withdrawn, e.starts_on)
            case Trajectory.Closed():
                return self._free(loaded, e.originator_id, e.released, e.withdrawn, e.closed_on)
            case ProviderContract.Awarded():
                return self._admit(loaded, e.programme, e.discipline, e.starts_on)
            case ProviderContract.PlacesChanged():
                contract: ProviderContract = self.repository.get(e.originator_id)
                return self._admit(loaded, contract.programme, contract.discipline, e.on)
        return False

    def _request(self: TrajectoryApplication, loaded: _Loaded, trajectory_id: uuid.UUID,
                 discipline: str, on: dt.date) -> bool:
        """A provider for one discipline: assigned, waitlisted, or refused (no contract)."""
        trajectory = loaded.trajectory(trajectory_id)
        if trajectory is None or not trajectory.needs(discipline):
            return False
        lots, refusal = available(self.lots(trajectory.programme, discipline), trajectory.municipality, on)
        if refusal is not None:
            trajectory.refuse(discipline, refusal, on)
            log.info("assignment_refused", extra={"trajectory": str(trajectory_id),
                                                  "discipline": discipline, "reason": refusal})
            return True
        capacity = loaded.capacity(trajectory.programme, discipline)
        assert capacity is not None
        provider = capacity.decide(trajectory_id, trajectory.municipality, on, lots)
        if provider is None:
            trajectory.waitlist(discipline, on)
        else:
            trajectory.assign(discipline, provider, on)
        log.info("assignment_decided", extra={"trajectory": str(trajectory_id), "discipline": discipline,
                                              "provider": provider, "waitlisted": provider is None})
        return True

    def _free(self: TrajectoryApplication, loaded: _Loaded, trajectory_id: uuid.UUID,
              released: dict[str, str], withdrawn: list[str], on: dt.date) -> bool:
        """Places that freed go to whoever waits for them, in order."""
        trajectory = loaded.trajectory(trajectory_id)
        assert trajectory is not None
        for discipline in withdrawn:
            capacity = loaded.capacity(trajectory.programme, discipline, create=False)
            if capacity is not None:
                capacity.withdraw(trajectory_id, "trajectory-ended")
        for discipline, provider in released.items():
            capacity = loaded.capacity(trajectory.programme, discipline, create=False)
            if capacity is not None and capacity.release(trajectory_id, provider, on):
                self._admit(loaded, trajectory.programme, discipline, on)
        return bool(released or withdrawn)

    def _admit(self: TrajectoryApplication, loaded: _Loaded, programme: str, discipline: str,
               on: dt.date) -> bool:
        capacity = loaded.capacity(programme, discipline, create=False)
        if capacity is None or not capacity.waiting:
            return False

        def wants(trajectory_id: uuid.UUID) -> bool:
            trajectory = loaded.trajectory(trajectory_id)
            return trajectory is not None and discipline in trajectory.waiting and not trajectory.is_ended

        admitted, refused = capacity.admit(on, self.lots_on(programme, discipline), wants)
        for turn in admitted:
            loaded.trajectory(turn.trajectory_id).assign(discipline, turn.outcome, turn.on)  # type: ignore[union-attr]
        for turn in refused:
            loaded.trajectory(turn.trajectory_id).refuse(discipline, turn.outcome, turn.on)  # type: ignore[union-attr]
        if admitted or refused:
            log.info("waitlist_moved", extra={"programme": programme, "discipline": discipline,
                                              "assigned": len(admitted), "refused": len(refused)})
        return True
