"""What providers report about the trajectories assigned to them: one signed report at a
time, each answered once (the same webhook id gets its first answer again)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from contracts.idempotency import Answer, RequestKey, recorded, replay
from contracts.problems import Conflict, Invalid, NotFound
from trajectory import provider_reports as reports
from trajectory.domain import InvalidFact, Trajectory, TrajectoryConflict, UnknownObstacle
from trajectory.usecases import Write
from trajectory.usecases.reading import find_trajectory
from trajectory.usecases.reference import ReferenceData

log = logging.getLogger(__name__)


class ProviderReports:
    def __init__(self, app: Any, reference: ReferenceData, today: Callable[[], dt.date],
                 write: Write) -> None:
        self.app, self.reference, self._today, self._write = app, reference, today, write

    def report(self, provider: str, trajectory_id: uuid.UUID, report: reports.Report,
               key: RequestKey) -> Answer:
        """Applies one signed report: accepted with a summary, or the Conflict document
        when it does not fit the trajectory's state (recorded as the answer, like any
        other). The same webhook id returns its first answer again."""
        def command() -> Answer:
            if first := replay(self.app, key):
                return first
            trajectory = self._reported_on(trajectory_id, provider, report.discipline)
            for name, value in reports.dates(report):
                if value > self._today():
                    raise Invalid.field(name, "lies in the future")
            try:
                self._apply(trajectory, report, provider)
                answer = Answer.accepted({"report_id": key.key, "trajectory_id": str(trajectory.id),
                                          "state": trajectory.state,
                                          "allowed_next": trajectory.allowed_next()})
                changed = [trajectory]
            except TrajectoryConflict as conflict:
                refusal = not_possible(conflict)
                answer, changed = Answer(refusal.status, refusal.document()), []
            except UnknownObstacle:
                raise NotFound("Obstacle", "No obstacle with this id in the trajectory.") from None
            except InvalidFact as invalid:
                raise Invalid.field(invalid.field, invalid.reason) from None
            self.app.save(*changed, *recorded(key, answer))
            log.info("provider_report", extra={"provider": provider, "type": report.type,
                                               "trajectory": str(trajectory_id), "status": answer.status})
            return answer

        return self._write(command)

    def _reported_on(self, trajectory_id: uuid.UUID, provider: str, discipline: str) -> Trajectory:
        """The trajectory, if this provider holds the discipline in it; else not found (a
        provider learns nothing of trajectories that are not its own)."""
        trajectory = find_trajectory(self.app, trajectory_id)
        if trajectory is None or provider not in trajectory.providers:
            raise NotFound("Trajectory")
        if not trajectory.reports_to(provider, discipline):
            raise DisciplineNotAssigned()
        return trajectory

    def _apply(self, t: Trajectory, r: reports.Report, by: str) -> None:
        match r:
            case reports.PlanAgreed():
                programme = self.reference.programme(t.programme)
                if unknown := set(r.disciplines) - set(programme.disciplines):
                    raise InvalidFact("disciplines", f"not disciplines of this programme: {sorted(unknown)}")
                t.agree_plan(r.agreed_on, list(r.disciplines), by)
            case reports.ContractStarted():
                employer = r.employer or self.reference.programme(t.programme).employer
                if not employer:
                    raise InvalidFact("employer", "is required in this programme")
                t.start_contract(employer, r.starts_on, r.ends_on, by)
            case reports.ContractExtended():
                t.extend_contract(r.extended_on, r.ends_on, by)
            case reports.ContractEnded():
                t.end_contract(r.ended_on, r.reason, by)
            case reports.ObstacleIdentified():
                discipline = self.reference.programme(t.programme).discipline_for(r.kind)
                t.identify_obstacle(r.obstacle_id, r.kind, r.identified_on, discipline, by)
            case reports.ObstacleResolved():
                t.resolve_obstacle(r.obstacle_id, r.outcome, r.resolved_on, by)
            case reports.MediationFailed():
                t.record_failed_mediation(r.attempted_on, r.reason, by)
            case reports.SchoolingStarted():
                t.start_schooling(r.starts_on, r.relevance, r.occupation, by)
            case reports.SchoolingEnded():
                t.end_schooling(r.ended_on, r.outcome, by)
            case reports.DisciplineCompleted():
                t.complete_discipline(r.discipline, r.completed_on, by)
            case reports.PlacedInJob():
                t.place(r.employer, r.hours_per_week, r.contract_type, r.starts_on, by)
            case reports.Closed():
                t.close(r.reason, r.closed_on, by)


class DisciplineNotAssigned(NotFound):
    """The provider holds the trajectory, not the discipline it reports in."""

    def __init__(self) -> None:
        super().__init__("Discipline", "This discipline of the trajectory is not assigned to you.")
        self.title = "Discipline not assigned"


def not_possible(conflict: TrajectoryConflict) -> Conflict:
    """The refusal of a step the trajectory's state does not allow: its state, the steps
    it allows, and the rule where one decided it."""
    rule = {"rule": conflict.rule} if conflict.rule else {}
    return Conflict("Not possible in this state", conflict.detail, state=conflict.state,
                    allowed=conflict.allowed, **rule)
