"""Trajectories: what happens to a referred client between referral and placement.

Plain domain code: no Kafka, HTTP or SQL. The lifecycle is a state machine
(`LIFECYCLE`); inside it two tracks run side by side, as Focus2Move has them: the work
track (a temporary contract, at WNK in Focus2Move: started, extended, ended) and the
obstacle track (debts, addiction, ... identified, then resolved or made manageable).
Work first: schooling starts only after a failed attempt to mediate into work, and
only for a stated labour-market need. A command that does not fit raises
`TrajectoryConflict`, which names the state and the steps allowed in it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

# The steps a command may take, by lifecycle state; tracks add their own conditions
# (see `allowed_next`). Assignment by the desk and the work track sit beside these.
LIFECYCLE: dict[str, tuple[str, ...]] = {
    "opened": ("closed",),
    "waitlisted": ("closed",),
    "not-contracted": ("closed",),
    "assigned": ("plan-agreed", "obstacle-identified", "obstacle-resolved", "closed"),
    "active": ("plan-agreed", "obstacle-identified", "obstacle-resolved", "mediation-failed",
               "schooling-started", "schooling-ended", "discipline-completed", "placed-in-job",
               "closed"),
    "placed": ("reopened",),
    "closed": (),
}
# The temporary contract may start before the plan (an LBU client starts at WNK at once).
WORK_TRACK_STATES = ("opened", "waitlisted", "assigned", "active")
ENDED = ("placed", "closed")


class TrajectoryConflict(Exception):
    """The command does not fit the trajectory's state (or one of its tracks)."""

    def __init__(self, state: str, allowed: list[str], detail: str, rule: str | None = None) -> None:
        super().__init__(detail)
        self.state, self.allowed, self.detail, self.rule = state, allowed, detail, rule


class InvalidFact(Exception):
    """A fact reported with a command cannot be right; `field` names which one."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


class UnknownObstacle(Exception):
    """No obstacle with that id was identified in this trajectory."""


class Trajectory(Aggregate):
    """One client's trajectory in one programme; its id is the one intake gave it."""

    class Fact(Aggregate.Event):
        """Every fact names its tenant (the source of its integration events) and who
        recorded it: a provider's slug, "intake", "coaching" or "desk"."""

        municipality: str
        by: str

    @event("Opened")
    def __init__(self, id: uuid.UUID, *, referral_id: uuid.UUID, client_id: uuid.UUID,
                 municipality: str, programme: str, opened_on: dt.date) -> None:
        self.referral_id = referral_id
        self.client_id = client_id
        self.municipality = municipality
        self.programme = programme
        self.opened_on = opened_on
        self.state = "opened"
        self.assignments: dict[str, dict[str, Any]] = {}  # discipline -> provider, since
        self.waiting: dict[str, dt.date] = {}  # discipline -> waitlisted on
        self.refusals: dict[str, str] = {}  # discipline -> why no provider could be assigned
        self.providers: list[str] = []  # every provider ever assigned (they may read it)
        self.plan: dict[str, Any] | None = None
        self.work: dict[str, Any] = {"state": "none"}
        self.obstacles: dict[str, dict[str, Any]] = {}
        self.failed_mediations: list[dt.date] = []
        self.schooling: dict[str, Any] | None = None
        self.placement: dict[str, Any] | None = None
        self.closing: dict[str, Any] | None = None

    # --- what may happen next ----------------------------------------------------------

    def allowed_next(self) -> list[str]:
        steps = list(LIFECYCLE[self.state])
        if self.state in WORK_TRACK_STATES:
            steps += (["contract-extended", "contract-ended"] if self.work["state"] == "working"
                      else ["contract-started"])
        conditions = {
            "obstacle-resolved": any(o["state"] == "identified" for o in self.obstacles.values()),
            "schooling-started": bool(self.failed_mediations) and not self._in_schooling,
            "schooling-ended": self._in_schooling,
            "discipline-completed": bool(self.assignments),
        }
        return [s for s in steps if conditions.get(s, True)]

    @property
    def _in_schooling(self) -> bool:
        return self.schooling is not None and self.schooling["state"] == "in-schooling"

    @property
    def is_ended(self) -> bool:
        return self.state in ENDED

    def holder(self, discipline: str) -> str | None:
        assignment = self.assignments.get(discipline)
        return assignment["provider"] if assignment else None

    def reports_to(self, provider: str, discipline: str) -> bool:
        """Whether `provider` may report in `discipline`: it holds it, or held it until
        the trajectory ended (then it hears why a report no longer fits)."""
        if self.holder(discipline) == provider:
            return True
        return self.closing is not None and self.closing.get("released", {}).get(discipline) == provider

    def needs(self, discipline: str) -> bool:
        """Whether a request for the discipline still wants a provider."""
        return not self.is_ended and discipline not in self.assignments and discipline not in self.waiting

    def _require(self, step: str, on: dt.date | None = None, field: str = "") -> None:
        if step not in self.allowed_next():
            raise TrajectoryConflict(self.state, self.allowed_next(), self._why_not(step))
        if on is not None and on < self.opened_on:
            raise InvalidFact(field, "lies before the trajectory was opened")

    def _why_not(self, step: str) -> str:
        if step in LIFECYCLE[self.state] or (step.startswith("contract-") and self.state in WORK_TRACK_STATES):
            return {
                "contract-started": "A temporary contract is already running; extend or end it.",
                "contract-extended": "No temporary contract is running.",
                "contract-ended": "No temporary contract is running.",
                "obstacle-resolved": "No obstacle is open.",
                "schooling-ended": "No schooling is running.",
                "discipline-completed": "No provider is assigned.",
                "schooling-started": "Schooling is already running.",
            }.get(step, f"Not possible now: {step}.")
        return f"Not possible while the trajectory is {self.state}."

    # --- assignment (the desk decides; the trajectory records) -------------------------

    class Assigned(Fact):
        discipline: str
        provider: str
        assigned_on: dt.date

        def apply(self, t: Trajectory) -> None:
            t.assignments[self.discipline] = {"provider": self.provider, "since": self.assigned_on}
            t.waiting.pop(self.discipline, None)
            t.refusals.pop(self.discipline, None)
            if self.provider not in t.providers:
                t.providers.append(self.provider)
            if t.state in ("opened", "waitlisted"):
                t.state = "assigned"

    class Waitlisted(Fact):
        discipline: str
        waitlisted_on: dt.date

        def apply(self, t: Trajectory) -> None:
            t.waiting[self.discipline] = self.waitlisted_on
            if t.state == "opened":
                t.state = "waitlisted"

    class Refused(Fact):
        discipline: str
        refused_on: dt.date
        reason: str

        def apply(self, t: Trajectory) -> None:
            t.waiting.pop(self.discipline, None)
            t.refusals[self.discipline] = self.reason
            if t.state in ("opened", "waitlisted"):
                t.state = "not-contracted"

    def assign(self, discipline: str, provider: str, on: dt.date) -> None:
        self._fact(self.Assigned, "desk", discipline=discipline, provider=provider, assigned_on=on)

    def waitlist(self, discipline: str, on: dt.date) -> None:
        self._fact(self.Waitlisted, "desk", discipline=discipline, waitlisted_on=on)

    def refuse(self, discipline: str, reason: str, on: dt.date) -> None:
        self._fact(self.Refused, "desk", discipline=discipline, refused_on=on, reason=reason)

    # --- intake, diagnosis, plan -------------------------------------------------------

    class PlanAgreed(Fact):
        agreed_on: dt.date
        disciplines: list[str]

        def apply(self, t: Trajectory) -> None:
            t.plan = {"agreed_on": self.agreed_on, "disciplines": list(self.disciplines)}
            t.state = "active"

    def agree_plan(self, agreed_on: dt.date, disciplines: list[str], by: str) -> None:
        self._require("plan-agreed", agreed_on, "agreed_on")
        self._fact(self.PlanAgreed, by, agreed_on=agreed_on, disciplines=list(dict.fromkeys(disciplines)))

    class DisciplineCompleted(Fact):
        discipline: str
        provider: str
        completed_on: dt.date

        def apply(self, t: Trajectory) -> None:
            t.assignments.pop(self.discipline, None)

    def complete_discipline(self, discipline: str, completed_on: dt.date, by: str) -> None:
        self._require("discipline-completed", completed_on, "completed_on")
        provider = self.holder(discipline)
        if provider is None:
            raise TrajectoryConflict(self.state, self.allowed_next(),
                                     "That discipline has no provider assigned.")
        self._fact(self.DisciplineCompleted, by, discipline=discipline, provider=provider,
                   completed_on=completed_on)

    # --- the work track ----------------------------------------------------------------

    class ContractStarted(Fact):
        employer: str
        starts_on: dt.date
        ends_on: dt.date | None

        def apply(self, t: Trajectory) -> None:
            t.work = {"state": "working", "employer": self.employer, "starts_on": self.starts_on,
                      "ends_on": self.ends_on}

    class ContractExtended(Fact):
        employer: str
        extended_on: dt.date
        ends_on: dt.date

        def apply(self, t: Trajectory) -> None:
            t.work["ends_on"] = self.ends_on

    class ContractEnded(Fact):
        employer: str
        ended_on: dt.date
        reason: str

        def apply(self, t: Trajectory) -> None:
            t.work.update(state="ended", ended_on=self.ended_on, reason=self.reason)

    def start_contract(self, employer: str, starts_on: dt.date, ends_on: dt.date | None, by: str) -> None:
        self._require("contract-started", starts_on, "starts_on")
        if ends_on is not None and ends_on < starts_on:
            raise InvalidFact("ends_on", "lies before starts_on")
        self._fact(self.ContractStarted, by, employer=employer, starts_on=starts_on, ends_on=ends_on)

    def extend_contract(self, extended_on: dt.date, ends_on: dt.date, by: str) -> None:
        self._require("contract-extended", extended_on, "extended_on")
        if ends_on <= (self.work["ends_on"] or self.work["starts_on"]):
            raise InvalidFact("ends_on", "must lie after the contract's current end")
        self._fact(self.ContractExtended, by, employer=self.work["employer"],
                   extended_on=extended_on, ends_on=ends_on)

    def end_contract(self, ended_on: dt.date, reason: str, by: str) -> None:
        self._require("contract-ended", ended_on, "ended_on")
        if ended_on < self.work["starts_on"]:
            raise InvalidFact("ended_on", "lies before the contract started")
        self._fact(self.ContractEnded, by, employer=self.work["employer"], ended_on=ended_on,
                   reason=reason)

    # --- the obstacle track ------------------------------------------------------------

    class ObstacleIdentified(Fact):
        obstacle_id: uuid.UUID
        kind: str
        identified_on: dt.date
        discipline: str | None

        def apply(self, t: Trajectory) -> None:
            t.obstacles[str(self.obstacle_id)] = {
                "kind": self.kind, "state": "identified", "identified_on": self.identified_on,
                "discipline": self.discipline}

    class ObstacleResolved(Fact):
        obstacle_id: uuid.UUID
        outcome: str  # "resolved" or "manageable"
        resolved_on: dt.date

        def apply(self, t: Trajectory) -> None:
            t.obstacles[str(self.obstacle_id)].update(state=self.outcome, resolved_on=self.resolved_on)

    def identify_obstacle(self, obstacle_id: uuid.UUID, kind: str, identified_on: dt.date,
                          discipline: str | None, by: str) -> None:
        """`discipline` is the one that takes the obstacle on (the programme says which)."""
        self._require("obstacle-identified", identified_on, "identified_on")
        if str(obstacle_id) in self.obstacles:
            raise TrajectoryConflict(self.state, self.allowed_next(),
                                     "An obstacle with this id was already identified.")
        self._fact(self.ObstacleIdentified, by, obstacle_id=obstacle_id, kind=kind,
                   identified_on=identified_on, discipline=discipline)

    def resolve_obstacle(self, obstacle_id: uuid.UUID, outcome: str, resolved_on: dt.date, by: str) -> None:
        self._require("obstacle-resolved", resolved_on, "resolved_on")
        if str(obstacle_id) not in self.obstacles:
            raise UnknownObstacle()
        obstacle = self.obstacles[str(obstacle_id)]
        if obstacle["state"] != "identified":
            raise TrajectoryConflict(self.state, self.allowed_next(),
                                     f"The obstacle is already {obstacle['state']}.")
        if resolved_on < obstacle["identified_on"]:
            raise InvalidFact("resolved_on", "lies before the obstacle was identified")
        self._fact(self.ObstacleResolved, by, obstacle_id=obstacle_id, outcome=outcome,
                   resolved_on=resolved_on)

    # --- work first: mediation, then (perhaps) schooling -------------------------------

    class MediationFailed(Fact):
        attempted_on: dt.date
        reason: str

        def apply(self, t: Trajectory) -> None:
            t.failed_mediations.append(self.attempted_on)

    class SchoolingStarted(Fact):
        starts_on: dt.date
        relevance: str
        occupation: str

        def apply(self, t: Trajectory) -> None:
            t.schooling = {"state": "in-schooling", "starts_on": self.starts_on,
                           "relevance": self.relevance, "occupation": self.occupation}

    class SchoolingEnded(Fact):
        ended_on: dt.date
        outcome: str

        def apply(self, t: Trajectory) -> None:
            assert t.schooling is not None
            t.schooling.update(state=self.outcome, ended_on=self.ended_on)

    def record_failed_mediation(self, attempted_on: dt.date, reason: str, by: str) -> None:
        self._require("mediation-failed", attempted_on, "attempted_on")
        self._fact(self.MediationFailed, by, attempted_on=attempted_on, reason=reason)

    def start_schooling(self, starts_on: dt.date, relevance: str, occupation: str, by: str) -> None:
        if self.state == "active" and not self._in_schooling and not any(
                d <= starts_on for d in self.failed_mediations):
            raise TrajectoryConflict(
                self.state, self.allowed_next(),
                "Work first: schooling follows a recorded failed attempt to mediate into work.",
                rule="work-first")
        self._require("schooling-started", starts_on, "starts_on")
        if not relevance or not occupation.strip():
            raise InvalidFact("relevance", "state the schooling's relevance to the labour market")
        self._fact(self.SchoolingStarted, by, starts_on=starts_on, relevance=relevance,
                   occupation=occupation.strip())

    def end_schooling(self, ended_on: dt.date, outcome: str, by: str) -> None:
        self._require("schooling-ended", ended_on, "ended_on")
        assert self.schooling is not None
        if ended_on < self.schooling["starts_on"]:
            raise InvalidFact("ended_on", "lies before the schooling started")
        self._fact(self.SchoolingEnded, by, ended_on=ended_on, outcome=outcome)

    # --- the end, and a new beginning --------------------------------------------------

    class Placed(Fact):
        employer: str
        hours_per_week: float
        contract_type: str
        starts_on: dt.date
        released: dict[str, str]  # discipline -> provider whose place frees
        withdrawn: list[str]  # disciplines no longer waited for
        ended_contract: str | None  # employer of the temporary contract that ends with it

        def apply(self, t: Trajectory) -> None:
            t.placement = {"employer": self.employer, "hours_per_week": self.hours_per_week,
                           "contract_type": self.contract_type, "starts_on": self.starts_on}
            t._end("placed", "placed", self.starts_on, "regular-job", self.released)

    class Closed(Fact):
        reason: str
        closed_on: dt.date
        released: dict[str, str]
        withdrawn: list[str]
        ended_contract: str | None

        def apply(self, t: Trajectory) -> None:
            t._end("closed", self.reason, self.closed_on, "trajectory-closed", self.released)

    class Reopened(Fact):
        reopened_on: dt.date
        reason: str

        def apply(self, t: Trajectory) -> None:
            t.state = "active"
            t.closing = None

    def place(self, employer: str, hours_per_week: float, contract_type: str, starts_on: dt.date,
              by: str) -> None:
        self._require("placed-in-job", starts_on, "starts_on")
        self._fact(self.Placed, by, employer=employer, hours_per_week=hours_per_week,
                   contract_type=contract_type, starts_on=starts_on, **self._loose_ends())

    def close(self, reason: str, closed_on: dt.date, by: str) -> None:
        if reason == "placed":
            raise InvalidFact("reason", "a placement is reported as placed-in-job")
        self._require("closed", closed_on, "closed_on")
        self._fact(self.Closed, by, reason=reason, closed_on=closed_on, **self._loose_ends())

    def reopen(self, reopened_on: dt.date, reason: str, by: str) -> None:
        self._require("reopened", reopened_on, "reopened_on")
        self._fact(self.Reopened, by, reopened_on=reopened_on, reason=reason)

    def _loose_ends(self) -> dict[str, Any]:
        """What ends with the trajectory: its providers' places, its waits, its contract."""
        return {"released": {d: a["provider"] for d, a in self.assignments.items()},
                "withdrawn": list(self.waiting),
                "ended_contract": self.work["employer"] if self.work["state"] == "working" else None}

    def _end(self, state: str, reason: str, on: dt.date, contract_end_reason: str,
             released: dict[str, str]) -> None:
        self.state = state
        # Who held what until the end: they may still read it and hear why it is over.
        self.closing = {"reason": reason, "closed_on": on, "released": dict(released)}
        self.assignments.clear()
        self.waiting.clear()
        if self.work["state"] == "working":
            self.work.update(state="ended", ended_on=on, reason=contract_end_reason)

    def _fact(self, fact_class: type[Fact], by: str, **facts: Any) -> None:
        self.trigger_event(fact_class, municipality=self.municipality, by=by, **facts)
