"""The assignment desk: providers assigned within capacity.

The desk follows the service's own log (`contracts.following`). Every decision derives
from a recorded fact — a trajectory opened, a plan or an obstacle that needs a discipline,
a place that freed, a contract with more places — and is recorded in one transaction with
the desk's position, so each fact is decided once, even when the desk runs twice or in two
processes (the second loses on the tracking record and reads on). Consuming a referral
therefore never waits on the capacity of a discipline: opening is one transaction,
assignment the next.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification

from contracts.following import LogFollower
from trajectory.contracting import DisciplineCapacity, ProviderContract, available
from trajectory.domain import Trajectory
from trajectory.usecases.reference import ReferenceData

log = logging.getLogger(__name__)

DESK = "desk"  # the tracking name of the desk's position in the log
BATCH = 200  # facts read per round; a round that read fewer has caught up


class Touched:
    """The aggregates one decision touches, each loaded once, recorded together."""

    def __init__(self, app: Any) -> None:
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

    def __init__(self, app: Any, reference: ReferenceData, lock: AbstractContextManager[Any]) -> None:
        self.app, self.reference = app, reference
        self.follower = LogFollower(app, DESK, self.decide, lock=lock)

    def run(self, limit: int = BATCH) -> int:
        """Decides on the facts recorded since its position; returns how many it read."""
        return self.follower.run_once(limit)

    def decide(self, notification: Notification, e: Any) -> list[Aggregate]:
        """What follows from one fact: the aggregates it changed; none when nothing does."""
        touched = Touched(self.app)
        return list(touched.aggregates.values()) if self._decide(e, touched) else []

    def _decide(self, e: Any, touched: Touched) -> bool:
        match e:
            case Trajectory.Opened():
                programme = self.reference.programme(e.programme)
                return self._request(touched, e.originator_id, programme.entry_discipline, e.opened_on)
            case Trajectory.PlanAgreed():
                return any([self._request(touched, e.originator_id, d, e.agreed_on) for d in e.disciplines])
            case Trajectory.ObstacleIdentified() if e.discipline:
                return self._request(touched, e.originator_id, e.discipline, e.identified_on)
            case Trajectory.Reopened():
                trajectory = touched.trajectory(e.originator_id)
                discipline = self.reference.programme(trajectory.programme).reopen_discipline  # type: ignore[union-attr]
                return self._request(touched, e.originator_id, discipline, e.reopened_on)
            case Trajectory.DisciplineCompleted():
                return self._free(touched, e.originator_id, {e.discipline: e.provider}, [], e.completed_on)
            case Trajectory.Placed():
                return self._free(touched, e.originator_id, e.released, e.withdrawn, e.starts_on)
            case Trajectory.Closed():
                return self._free(touched, e.originator_id, e.released, e.withdrawn, e.closed_on)
            case ProviderContract.Awarded():
                return self._admit(touched, e.programme, e.discipline, e.starts_on)
            case ProviderContract.PlacesChanged():
                contract: ProviderContract = self.app.repository.get(e.originator_id)
                return self._admit(touched, contract.programme, contract.discipline, e.on)
        return False

    def _request(self, touched: Touched, trajectory_id: uuid.UUID, discipline: str, on: dt.date) -> bool:
        """A provider for one discipline: assigned, waitlisted, or refused (no contract)."""
        trajectory = touched.trajectory(trajectory_id)
        if trajectory is None or not trajectory.needs(discipline):
            return False
        lots, refusal = available(self.reference.lots(trajectory.programme, discipline),
                                  trajectory.municipality, on)
        if refusal is not None:
            trajectory.refuse(discipline, refusal, on)
            log.info("assignment_refused", extra={"trajectory": str(trajectory_id),
                                                  "discipline": discipline, "reason": refusal})
            return True
        capacity = touched.capacity(trajectory.programme, discipline)
        assert capacity is not None
        provider = capacity.decide(trajectory_id, trajectory.municipality, on, lots)
        if provider is None:
            trajectory.waitlist(discipline, on)
        else:
            trajectory.assign(discipline, provider, on)
        log.info("assignment_decided", extra={"trajectory": str(trajectory_id), "discipline": discipline,
                                              "provider": provider, "waitlisted": provider is None})
        return True

    def _free(self, touched: Touched, trajectory_id: uuid.UUID, released: dict[str, str],
              withdrawn: list[str], on: dt.date) -> bool:
        """Places that freed go to whoever waits for them, in order."""
        trajectory = touched.trajectory(trajectory_id)
        assert trajectory is not None
        for discipline in withdrawn:
            capacity = touched.capacity(trajectory.programme, discipline, create=False)
            if capacity is not None:
                capacity.withdraw(trajectory_id, "trajectory-ended")
        for discipline, provider in released.items():
            capacity = touched.capacity(trajectory.programme, discipline, create=False)
            if capacity is not None and capacity.release(trajectory_id, provider, on):
                self._admit(touched, trajectory.programme, discipline, on)
        return bool(released or withdrawn)

    def _admit(self, touched: Touched, programme: str, discipline: str, on: dt.date) -> bool:
        capacity = touched.capacity(programme, discipline, create=False)
        if capacity is None or not capacity.waiting:
            return False

        def wants(trajectory_id: uuid.UUID) -> bool:
            trajectory = touched.trajectory(trajectory_id)
            return trajectory is not None and discipline in trajectory.waiting and not trajectory.is_ended

        admitted, refused = capacity.admit(on, self.reference.lots_on(programme, discipline), wants)
        for turn in admitted:
            touched.trajectory(turn.trajectory_id).assign(discipline, turn.outcome, turn.on)  # type: ignore[union-attr]
        for turn in refused:
            touched.trajectory(turn.trajectory_id).refuse(discipline, turn.outcome, turn.on)  # type: ignore[union-attr]
        if admitted or refused:
            log.info("waitlist_moved", extra={"programme": programme, "discipline": discipline,
                                              "assigned": len(admitted), "refused": len(refused)})
        return True
