"""Reading trajectories: as the caller may see them, as they were recorded at a moment,
their history, and a provider's caseload."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from contracts.access import Principal
from contracts.problems import Forbidden, NotFound
from trajectory.domain import Trajectory
from trajectory.usecases.reference import ReferenceData
from trajectory.views import fact_view, trajectory_view, valid_on


def find_trajectory(app: Any, trajectory_id: uuid.UUID) -> Trajectory | None:
    """The trajectory with this id; None when there is none (or the id is another's)."""
    try:
        trajectory = app.repository.get(trajectory_id)
    except AggregateNotFoundError:
        return None
    return trajectory if isinstance(trajectory, Trajectory) else None


class TrajectoryReads:
    def __init__(self, app: Any, reference: ReferenceData) -> None:
        self.app, self.reference = app, reference

    def trajectory(self, trajectory_id: uuid.UUID, caller: Principal | None = None,
                   as_of: dt.datetime | None = None) -> dict[str, Any]:
        """The trajectory as the caller may see it; `as_of` replays it as recorded then."""
        trajectory = self._visible(trajectory_id, caller)
        if as_of is not None:
            trajectory = self._as_of(trajectory, as_of)
        return trajectory_view(trajectory, caller)

    def history(self, trajectory_id: uuid.UUID, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Every recorded fact of the trajectory with who recorded it when: for its
        municipality and auditors (it names every provider involved). Each shows its
        valid date (`on`, when it happened) apart from its recorded time (`recorded_at`,
        real time), in order of valid date; facts of one date in the order recorded."""
        self._visible(trajectory_id, caller)
        if caller is not None and caller.kind == "provider":
            raise Forbidden(detail="The history is for the municipality and auditors.")
        facts, on = [], None
        for e in self.app.events.get(trajectory_id):
            on = valid_on(e) or on  # a fact without a date of its own stays after the one before
            facts.append((on or dt.date.min, e.timestamp, e.originator_version, e))
        return [fact_view(e) for *_, e in sorted(facts, key=lambda f: f[:3])]

    def caseload(self, provider: str) -> list[dict[str, Any]]:
        """The trajectories a provider holds now, per discipline."""
        held = []
        for key in self.reference.register().lots:
            programme, discipline = key.split("|", 1)
            for trajectory_id in self.reference.capacity(programme, discipline).holding.get(provider, []):
                held.append({"trajectory_id": trajectory_id, "programme": programme,
                             "discipline": discipline})
        return held

    def _visible(self, trajectory_id: uuid.UUID, caller: Principal | None) -> Trajectory:
        """Municipalities see their own, providers those assigned to them, auditors all;
        anything else is not found, so that existence does not leak."""
        trajectory = find_trajectory(self.app, trajectory_id)
        if trajectory is None or not _may_see(caller, trajectory):
            raise NotFound("Trajectory")
        return trajectory

    def _as_of(self, trajectory: Trajectory, as_of: dt.datetime) -> Trajectory:
        version = max((e.originator_version for e in self.app.events.get(trajectory.id)
                       if e.timestamp <= as_of), default=None)
        if version is None:
            raise NotFound("Trajectory", "It was not recorded yet at that time.")
        return self.app.repository.get(trajectory.id, version=version)


def _may_see(caller: Principal | None, trajectory: Trajectory) -> bool:
    if caller is None:  # in-process callers (tests, the service itself)
        return True
    if caller.kind == "auditor":
        return caller.may("audit:read")
    if not caller.may("trajectories:read"):
        return False
    if caller.kind == "provider":
        return caller.provider in trajectory.providers
    return caller.municipality is not None and caller.sees_municipality(trajectory.municipality)
