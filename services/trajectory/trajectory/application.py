"""The trajectory service's use cases: one application class, in parts.

- here: what the service consumes from Kafka (referrals, withdrawals, coaching's
  requests to reopen), what providers report, and reading trajectories;
- `tendering`: the tender's reference data, seeded once and changed by audited commands;
- `desk`: providers assigned within capacity, following the service's own log;
- `notifying`: providers' subscriptions and the webhook deliveries to them.

Methods take ids and primitives and return plain dicts, never aggregates. Writes run
under one lock per process and again on a version conflict with another process, by the
rule every service follows (`contracts.commands`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent

from contracts.access import Principal
from contracts.commands import retry_on_conflict
from contracts.envelope import Attributes, CloudEvent
from contracts.events import (
    ClientReferred, Event, ReferralWithdrawn, TrajectoryReopenRequested,
)
from contracts.idempotency import IdempotencyRecord, RequestKey, replay
from contracts.problems import Problem
from contracts.service import Outcome, ServiceApplication
from trajectory import reports
from trajectory.contracting import DisciplineCapacity
from trajectory.desk import AssignmentDesk
from trajectory.domain import InvalidFact, Trajectory, TrajectoryConflict, UnknownObstacle
from trajectory.integration import integration_events
from trajectory.notifying import DeliveryIndex, Notifications, SubscriptionIndex
from trajectory.subscriptions import Backoff
from trajectory.tender import TenderData, load
from trajectory.tendering import TenderUseCases
from trajectory.webhook_secrets import SecretStore, secret_store_for

__all__ = ["TrajectoryApplication", "TrajectoryConfig", "RequestKey", "integration_events"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Why intake withdrew a referral, as the reason its trajectory closes.
WITHDRAWAL_REASONS = {"client-request": "dropped-out", "moved-away": "moved-away",
                      "back-on-benefit": "back-on-benefit", "error": "other", "other": "other"}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class TrajectoryConfig:
    public_url: str = "http://127.0.0.1:8002"  # where providers fetch what a notification names
    backoff: Backoff = field(default_factory=Backoff)
    allow_http_callbacks: bool = False  # plain http only for development and tests


class TrajectoryApplication(TenderUseCases, AssignmentDesk, Notifications, ServiceApplication):
    """Opens a trajectory for every referral, assigns providers within their contracts, and
    follows the trajectory to placement through what the providers report."""

    name = "trajectory"
    group = "trajectory"
    consumes = (ClientReferred, ReferralWithdrawn, TrajectoryReopenRequested)
    # Every assignment in a discipline is an event on its capacity: load from a snapshot.
    snapshotting_intervals = {DisciplineCapacity: 100}

    def __init__(self, env: dict[str, str] | None = None, *, tender: TenderData | None = None,
                 clock: Callable[[], dt.datetime] = utc_now,
                 config: TrajectoryConfig | None = None, secrets: SecretStore | None = None,
                 calendar: Callable[[], dt.date] | None = None) -> None:
        super().__init__(env)
        self.clock = clock  # real time: webhook deliveries, their retries and signatures
        self.calendar = calendar  # the business date (the installation's clock), if not clock's
        self.config = config or TrajectoryConfig()
        self.writes = threading.RLock()
        self.secrets = secrets or secret_store_for(self.recorder)
        self.delivery_index = DeliveryIndex()
        self.subscription_index = SubscriptionIndex()
        self.seed(tender or load())

    def today(self) -> dt.date:
        """The business date: the installation's clock when wired (`main.build()`)."""
        return self.calendar() if self.calendar is not None else self.clock().date()

    def write(self, command: Callable[[], T], what: str = "trajectory") -> T:
        """Runs a command under the write lock; on a version conflict with another process
        it runs again on fresh state (the command reloads what it changes), and answers
        503 Busy if it keeps losing (`contracts.commands`)."""
        return retry_on_conflict(command, what=what, lock=self.writes)

    # --- what the service consumes ------------------------------------------------------

    def apply(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> Outcome:
        with self.writes:  # the desk and the webhooks write the same trajectories
            return super().apply(cloud_event, topic, partition, offset)

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        if isinstance(event, ClientReferred):
            opened = self._open(event)
        elif isinstance(event, ReferralWithdrawn):
            opened = self._close_withdrawn(event)
        elif isinstance(event, TrajectoryReopenRequested):
            opened = self._reopen(event)
        else:
            opened = None
        if opened is not None:
            processing_event.collect_events(opened)

    def _open(self, event: ClientReferred) -> Trajectory | None:
        if event.trajectory_id in self.repository:
            log.warning("trajectory_exists", extra={"trajectory": str(event.trajectory_id)})
            return None
        trajectory = Trajectory(event.trajectory_id, referral_id=event.referral_id,
                                client_id=event.client_id, municipality=event.municipality,
                                programme=event.programme, opened_on=event.referred_on)
        if event.route == "lbu" and event.wnk_contract_starts_on is not None:
            # LBU: the client took a job instead of a benefit, so the work track starts
            # with the trajectory (the provider guiding it is assigned next, by the desk).
            employer = self._employer(event.programme) or "WNK"
            try:
                trajectory.start_contract(employer, event.wnk_contract_starts_on, None, by="intake")
            except (InvalidFact, TrajectoryConflict) as error:  # opening matters more
                log.warning("lbu_contract_not_recorded", extra={"trajectory": str(event.trajectory_id),
                                                                "reason": type(error).__name__})
        return trajectory

    def _employer(self, programme: str) -> str | None:
        try:
            return self.programme(programme).employer
        except Problem:
            return None

    def _close_withdrawn(self, event: ReferralWithdrawn) -> Trajectory | None:
        trajectory = self._get_trajectory(event.trajectory_id)
        if trajectory is None or trajectory.is_ended:
            return None
        # A withdrawal dated before the referral (a slip upstream) still closes it: on the
        # day it opened, so that its places free.
        closed_on = max(event.withdrawn_on, trajectory.opened_on)
        trajectory.close(WITHDRAWAL_REASONS[event.reason], closed_on, by="intake")
        return trajectory

    def _reopen(self, event: TrajectoryReopenRequested) -> Trajectory | None:
        trajectory = self._get_trajectory(event.trajectory_id)
        if trajectory is None or trajectory.state != "placed":
            log.info("reopen_not_possible", extra={"trajectory": str(event.trajectory_id),
                                                   "state": trajectory.state if trajectory else None})
            return None
        trajectory.reopen(max(event.requested_on, trajectory.opened_on), event.reason, by="coaching")
        return trajectory

    def _get_trajectory(self, trajectory_id: uuid.UUID) -> Trajectory | None:
        try:
            trajectory = self.repository.get(trajectory_id)
        except AggregateNotFoundError:
            return None
        return trajectory if isinstance(trajectory, Trajectory) else None

    # --- what providers report ------------------------------------------------------------

    def report(self, provider: str, trajectory_id: uuid.UUID, report: reports.Report,
               keyed: RequestKey) -> tuple[int, dict[str, Any]]:
        """Applies one signed report; (202, summary), or (409, problem) when it does not fit
        the trajectory's state. The same webhook id returns its first answer again."""
        def command() -> tuple[int, dict[str, Any]]:
            if first := replay(self, keyed):
                return first
            trajectory = self._reported_on(trajectory_id, provider, report.discipline)
            for name, value in reports.dates(report):
                if value > self.today():
                    raise _invalid(name, "lies in the future")
            try:
                self._apply_report(trajectory, report, provider)
                status, body = 202, {"report_id": keyed.key, "trajectory_id": str(trajectory.id),
                                     "state": trajectory.state, "allowed_next": trajectory.allowed_next()}
            except TrajectoryConflict as conflict:
                status, body = 409, _conflict(conflict)
            except UnknownObstacle:
                raise Problem(404, "Obstacle not found", "No obstacle with this id in the trajectory.") from None
            except InvalidFact as invalid:
                raise _invalid(invalid.field, invalid.reason) from None
            changed = [trajectory] if status == 202 else []
            self.save(*changed, IdempotencyRecord(keyed.scope, keyed.key, keyed.request, status, body))
            log.info("provider_report", extra={"provider": provider, "type": report.type,
                                               "trajectory": str(trajectory_id), "status": status})
            return status, body

        return self.write(command)

    def _reported_on(self, trajectory_id: uuid.UUID, provider: str, discipline: str) -> Trajectory:
        """The trajectory, if this provider holds the discipline in it; else 404 (a provider
        learns nothing of trajectories that are not its own)."""
        trajectory = self._get_trajectory(trajectory_id)
        if trajectory is None or provider not in trajectory.providers:
            raise Problem(404, "Trajectory not found")
        if not trajectory.reports_to(provider, discipline):
            raise Problem(404, "Discipline not assigned",
                          "This discipline of the trajectory is not assigned to you.")
        return trajectory

    def _apply_report(self, t: Trajectory, r: reports.Report, by: str) -> None:
        match r:
            case reports.PlanAgreed():
                programme = self.programme(t.programme)
                if unknown := set(r.disciplines) - set(programme.disciplines):
                    raise InvalidFact("disciplines", f"not disciplines of this programme: {sorted(unknown)}")
                t.agree_plan(r.agreed_on, list(r.disciplines), by)
            case reports.ContractStarted():
                employer = r.employer or self.programme(t.programme).employer
                if not employer:
                    raise InvalidFact("employer", "is required in this programme")
                t.start_contract(employer, r.starts_on, r.ends_on, by)
            case reports.ContractExtended():
                t.extend_contract(r.extended_on, r.ends_on, by)
            case reports.ContractEnded():
                t.end_contract(r.ended_on, r.reason, by)
            case reports.ObstacleIdentified():
                discipline = self.programme(t.programme).discipline_for(r.kind)
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

    # --- reading trajectories -----------------------------------------------------------

    def trajectory(self, trajectory_id: uuid.UUID, caller: Principal | None = None,
                   as_of: dt.datetime | None = None) -> dict[str, Any]:
        """The trajectory as the caller may see it; `as_of` replays it as recorded then."""
        trajectory = self._visible(trajectory_id, caller)
        if as_of is not None:
            trajectory = self._as_of(trajectory, as_of)
        return _view(trajectory, caller)

    def history(self, trajectory_id: uuid.UUID, caller: Principal | None = None) -> list[dict[str, Any]]:
        """Every recorded fact of the trajectory with who recorded it when: for its
        municipality and auditors (it names every provider involved). Each shows its
        valid date (`on`, when it happened) apart from its recorded time (`recorded_at`,
        real time), in order of valid date; facts of one date in the order recorded."""
        self._visible(trajectory_id, caller)
        if caller is not None and caller.kind == "provider":
            raise Problem(403, "Forbidden", "The history is for the municipality and auditors.")
        facts, on = [], None
        for e in self.events.get(trajectory_id):
            on = _valid_on(e) or on  # a fact without a date of its own stays after the one before
            facts.append((on or dt.date.min, e.timestamp, e.originator_version, e))
        return [_fact_view(e) | {"on": _iso(_valid_on(e))} for *_, e in sorted(facts, key=lambda f: f[:3])]

    def caseload(self, provider: str) -> list[dict[str, Any]]:
        """The trajectories a provider holds now, per discipline."""
        register = self.register()
        held = []
        for key in register.lots:
            programme, discipline = key.split("|", 1)
            for trajectory_id in self.capacity(programme, discipline).holding.get(provider, []):
                held.append({"trajectory_id": trajectory_id, "programme": programme,
                             "discipline": discipline})
        return held

    def _visible(self, trajectory_id: uuid.UUID, caller: Principal | None) -> Trajectory:
        """Municipalities see their own, providers those assigned to them, auditors all;
        anything else is a 404, so that existence does not leak."""
        trajectory = self._get_trajectory(trajectory_id)
        if trajectory is None or not _may_see(caller, trajectory):
            raise Problem(404, "Trajectory not found")
        return trajectory

    def _as_of(self, trajectory: Trajectory, as_of: dt.datetime) -> Trajectory:
        version = max((e.originator_version for e in self.events.get(trajectory.id)
                       if e.timestamp <= as_of), default=None)
        if version is None:
            raise Problem(404, "Trajectory not found", "It was not recorded yet at that time.")
        return self.repository.get(trajectory.id, version=version)


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


def _invalid(field: str, reason: str) -> Problem:
    return Problem(422, "Invalid request", "One or more fields are invalid.",
                   errors=[{"field": field, "reason": reason}])


def _conflict(conflict: TrajectoryConflict) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": "Not possible in this state",
                            "status": 409, "detail": conflict.detail, "state": conflict.state,
                            "allowed": conflict.allowed}
    if conflict.rule:
        body["rule"] = conflict.rule
    return body


def _iso(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_iso(v) for v in value]
    return value


def _view(t: Trajectory, caller: Principal | None) -> dict[str, Any]:
    own = caller.provider if caller is not None and caller.kind == "provider" else None
    assignments = {d: a for d, a in t.assignments.items() if own is None or a["provider"] == own}
    view = {
        "trajectory_id": str(t.id), "referral_id": str(t.referral_id), "client_id": str(t.client_id),
        "municipality": t.municipality, "programme": t.programme, "state": t.state,
        "allowed_next": t.allowed_next(), "opened_on": t.opened_on.isoformat(),
        "assignments": [{"discipline": d, "provider": a["provider"], "since": a["since"].isoformat()}
                        for d, a in assignments.items()],
        "work_track": _iso(t.work),
        "obstacles": [{"obstacle_id": i} | _iso(o) for i, o in t.obstacles.items()],
        "failed_mediations": _iso(t.failed_mediations),
        "schooling": _iso(t.schooling), "plan": _iso(t.plan),
        "placement": _iso(t.placement),
        "closing": _iso({k: v for k, v in t.closing.items() if k != "released"}) if t.closing else None,
        "version": t.version,
    }
    if own is None:  # municipalities and auditors see the whole picture
        view["waiting"] = {d: s.isoformat() for d, s in t.waiting.items()}
        view["refusals"] = dict(t.refusals)
    return view


def _valid_on(e: Any) -> dt.date | None:
    """A fact's valid date: its first date field (`opened_on`, `starts_on`, …)."""
    for name in (*getattr(type(e), "__annotations__", {}), *vars(e)):
        value = getattr(e, name, None)
        if name.endswith("_on") and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
    return None


def _fact_view(e: Any) -> dict[str, Any]:
    facts = {k: v for k, v in vars(e).items()
             if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")}
    return {"fact": type(e).__name__, "version": e.originator_version,
            "recorded_at": e.timestamp.isoformat(), **_iso(facts)}
