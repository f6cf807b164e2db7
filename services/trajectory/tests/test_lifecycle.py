"""The trajectory's state machine, in the domain alone (no store, no broker): every step
allowed in every state succeeds, every other is refused naming the state and what is
allowed; the two Focus2Move tracks; the work-first rule."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from trajectory.domain import (
    LIFECYCLE, InvalidFact, Trajectory, TrajectoryConflict, UnknownObstacle,
)

OPENED = dt.date(2008, 2, 4)
DAY = dt.date(2008, 3, 3)
LEAD = "Directe bemiddeling en Nazorg"
WNK = "WNK (Werkvoorzieningschap Noord-Kennemerland)"


def opened() -> Trajectory:
    return Trajectory(uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                      municipality="alkmaar", programme="focus2move", opened_on=OPENED)


def assigned() -> Trajectory:
    t = opened()
    t.assign(LEAD, "agens", OPENED)
    return t


def active() -> Trajectory:
    t = assigned()
    t.agree_plan(OPENED, [], "agens")
    return t


def working() -> Trajectory:
    t = active()
    t.start_contract(WNK, OPENED, dt.date(2008, 8, 3), "agens")
    return t


def with_obstacle() -> Trajectory:
    t = active()
    t.identify_obstacle(uuid.uuid4(), "debts", OPENED, "Schuldhulpverlening", "agens")
    return t


def after_failed_mediation() -> Trajectory:
    t = active()
    t.record_failed_mediation(OPENED, "no-suitable-vacancy", "agens")
    return t


def in_schooling() -> Trajectory:
    t = after_failed_mediation()
    t.start_schooling(OPENED, "shortage-occupation", "lasser", "agens")
    return t


def waitlisted() -> Trajectory:
    t = opened()
    t.waitlist(LEAD, OPENED)
    return t


def not_contracted() -> Trajectory:
    t = opened()
    t.refuse(LEAD, "outside-contract-period", OPENED)
    return t


def placed() -> Trajectory:
    t = working()
    t.place("Bakkerij De Korenschoof", 32, "fixed-term", DAY, "agens")
    return t


def closed() -> Trajectory:
    t = assigned()
    t.close("dropped-out", DAY, "agens")
    return t


SITUATIONS: dict[str, Callable[[], Trajectory]] = {
    "opened": opened, "waitlisted": waitlisted, "not-contracted": not_contracted,
    "assigned": assigned, "active": active, "active, working at WNK": working,
    "active, an obstacle open": with_obstacle, "active, mediation failed": after_failed_mediation,
    "active, in schooling": in_schooling, "placed": placed, "closed": closed,
}


def open_obstacle(t: Trajectory) -> uuid.UUID:
    return next((uuid.UUID(i) for i, o in t.obstacles.items() if o["state"] == "identified"), uuid.uuid4())


STEPS: dict[str, Callable[[Trajectory], None]] = {
    "plan-agreed": lambda t: t.agree_plan(DAY, ["Schuldhulpverlening"], "agens"),
    "contract-started": lambda t: t.start_contract(WNK, DAY, None, "agens"),
    "contract-extended": lambda t: t.extend_contract(DAY, dt.date(2009, 2, 1), "agens"),
    "contract-ended": lambda t: t.end_contract(DAY, "term-expired", "agens"),
    "obstacle-identified": lambda t: t.identify_obstacle(uuid.uuid4(), "addiction", DAY, "Verslavingszorg", "agens"),
    "obstacle-resolved": lambda t: t.resolve_obstacle(open_obstacle(t), "manageable", DAY, "agens"),
    "mediation-failed": lambda t: t.record_failed_mediation(DAY, "not-hired", "agens"),
    "schooling-started": lambda t: t.start_schooling(DAY, "required-qualification", "heftruckchauffeur", "agens"),
    "schooling-ended": lambda t: t.end_schooling(DAY, "completed", "agens"),
    "discipline-completed": lambda t: t.complete_discipline(LEAD, DAY, "agens"),
    "placed-in-job": lambda t: t.place("Bakkerij De Korenschoof", 32, "permanent", DAY, "agens"),
    "closed": lambda t: t.close("moved-away", DAY, "agens"),
    "reopened": lambda t: t.reopen(dt.date(2008, 9, 1), "job-lost", "coaching"),
}
STATE_AFTER = {"plan-agreed": "active", "placed-in-job": "placed", "closed": "closed", "reopened": "active"}


def test_every_step_of_the_lifecycle_has_a_command():
    every_step = {s for steps in LIFECYCLE.values() for s in steps}
    every_step |= {"contract-started", "contract-extended", "contract-ended"}
    assert every_step == set(STEPS)


@pytest.mark.parametrize("situation", SITUATIONS)
@pytest.mark.parametrize("step", STEPS)
def test_each_step_is_taken_where_allowed_and_refused_elsewhere_naming_state_and_next_steps(situation, step):
    t = SITUATIONS[situation]()
    state, allowed, version = t.state, t.allowed_next(), t.version
    if step in allowed:
        STEPS[step](t)
        assert t.state == STATE_AFTER.get(step, state)
    else:
        with pytest.raises(TrajectoryConflict) as refused:
            STEPS[step](t)
        assert refused.value.state == state
        assert refused.value.allowed == allowed
        assert refused.value.detail
        assert t.state == state and t.version == version  # nothing recorded


def test_the_allowed_steps_per_state():
    assert opened().allowed_next() == ["closed", "contract-started"]
    assert not_contracted().allowed_next() == ["closed"]
    assert assigned().allowed_next() == ["plan-agreed", "obstacle-identified", "closed", "contract-started"]
    assert "obstacle-resolved" in with_obstacle().allowed_next()
    assert "schooling-started" in after_failed_mediation().allowed_next()
    assert {"contract-extended", "contract-ended"} <= set(working().allowed_next())
    assert "contract-started" not in working().allowed_next()
    assert placed().allowed_next() == ["reopened"]
    assert closed().allowed_next() == []


# --- assignment, as the desk records it ------------------------------------------------


def test_the_first_assignment_moves_an_opened_or_waiting_trajectory_to_assigned():
    t = waitlisted()
    assert t.state == "waitlisted" and LEAD in t.waiting
    t.assign(LEAD, "iwa-wurkympuls", DAY)
    assert t.state == "assigned" and t.holder(LEAD) == "iwa-wurkympuls" and not t.waiting


def test_a_refusal_leaves_an_opened_trajectory_not_contracted_but_an_active_one_active():
    assert not_contracted().state == "not-contracted"
    t = active()
    t.refuse("Verslavingszorg", "no-contract-for-municipality", DAY)
    assert t.state == "active" and t.refusals == {"Verslavingszorg": "no-contract-for-municipality"}


def test_a_discipline_is_needed_until_it_is_held_or_waited_for():
    t = active()
    assert t.needs("Schuldhulpverlening") and not t.needs(LEAD)
    t.waitlist("Schuldhulpverlening", DAY)
    assert not t.needs("Schuldhulpverlening")
    t.close("other", DAY, "agens")
    assert not t.needs("Verslavingszorg")


# --- the two tracks side by side -------------------------------------------------------


def test_both_focus2move_tracks_run_side_by_side():
    t = active()
    debts, addiction = uuid.uuid4(), uuid.uuid4()
    t.start_contract(WNK, dt.date(2008, 2, 11), dt.date(2008, 8, 10), "agens")
    t.identify_obstacle(debts, "debts", dt.date(2008, 2, 12), "Schuldhulpverlening", "agens")
    t.identify_obstacle(addiction, "addiction", dt.date(2008, 2, 20), "Verslavingszorg", "agens")
    t.extend_contract(dt.date(2008, 7, 1), dt.date(2009, 2, 10), "agens")
    t.resolve_obstacle(debts, "manageable", dt.date(2008, 7, 15), "dhg")
    t.resolve_obstacle(addiction, "resolved", dt.date(2008, 9, 1), "inova")
    assert t.work["state"] == "working" and t.work["ends_on"] == dt.date(2009, 2, 10)
    assert {o["state"] for o in t.obstacles.values()} == {"manageable", "resolved"}
    t.place("Bakkerij De Korenschoof", 32, "fixed-term", dt.date(2008, 10, 1), "agens")
    assert t.work["state"] == "ended" and t.work["reason"] == "regular-job"


def test_the_work_track_starts_again_after_a_contract_ended():
    t = working()
    t.end_contract(DAY, "term-expired", "agens")
    assert t.allowed_next()[-1] == "contract-started"
    t.start_contract(WNK, dt.date(2008, 4, 1), None, "agens")
    assert t.work["state"] == "working"


def test_a_contract_extension_must_reach_beyond_the_current_end():
    t = working()
    with pytest.raises(InvalidFact) as invalid:
        t.extend_contract(DAY, dt.date(2008, 8, 3), "agens")
    assert invalid.value.field == "ends_on"


def test_a_contract_cannot_end_before_it_started():
    with pytest.raises(InvalidFact) as invalid:
        opened().start_contract(WNK, DAY, dt.date(2008, 3, 1), "agens")
    assert invalid.value.field == "ends_on"
    t = active()
    t.start_contract(WNK, DAY, None, "agens")
    with pytest.raises(InvalidFact) as invalid:
        t.end_contract(dt.date(2008, 3, 1), "resigned", "agens")
    assert invalid.value.field == "ended_on"


def test_an_obstacle_is_resolved_once_and_only_if_it_was_identified():
    t = with_obstacle()
    obstacle = open_obstacle(t)
    t.identify_obstacle(uuid.uuid4(), "housing", DAY, "Maatschappelijk werk", "agens")
    with pytest.raises(UnknownObstacle):
        t.resolve_obstacle(uuid.uuid4(), "resolved", DAY, "agens")
    t.resolve_obstacle(obstacle, "resolved", DAY, "agens")
    with pytest.raises(TrajectoryConflict, match="already resolved"):
        t.resolve_obstacle(obstacle, "manageable", DAY, "agens")
    with pytest.raises(TrajectoryConflict, match="already identified"):
        t.identify_obstacle(obstacle, "debts", DAY, None, "agens")


def test_no_fact_may_lie_before_the_trajectory_opened():
    t = active()
    with pytest.raises(InvalidFact) as invalid:
        t.identify_obstacle(uuid.uuid4(), "debts", OPENED - dt.timedelta(days=1), None, "agens")
    assert invalid.value.field == "identified_on"


# --- work first ---------------------------------------------------------------------------


def test_work_first_no_schooling_without_a_failed_mediation_attempt():
    t = active()
    with pytest.raises(TrajectoryConflict) as refused:
        t.start_schooling(DAY, "shortage-occupation", "lasser", "agens")
    assert refused.value.rule == "work-first"
    assert "schooling-started" not in refused.value.allowed
    assert "mediation-failed" in refused.value.allowed


def test_work_first_the_failed_attempt_must_come_before_the_schooling():
    t = active()
    t.record_failed_mediation(dt.date(2008, 4, 1), "not-hired", "agens")
    with pytest.raises(TrajectoryConflict) as refused:
        t.start_schooling(DAY, "shortage-occupation", "lasser", "agens")
    assert refused.value.rule == "work-first"


def test_work_first_schooling_needs_a_stated_labour_market_relevance():
    t = after_failed_mediation()
    with pytest.raises(InvalidFact) as invalid:
        t.start_schooling(DAY, "", "lasser", "agens")
    assert invalid.value.field == "relevance"
    with pytest.raises(InvalidFact):
        t.start_schooling(DAY, "shortage-occupation", "  ", "agens")
    t.start_schooling(DAY, "shortage-occupation", "lasser", "agens")
    assert t.schooling == {"state": "in-schooling", "starts_on": DAY, "relevance": "shortage-occupation",
                           "occupation": "lasser"}


def test_work_first_applies_to_every_programme():
    t = Trajectory(uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                   municipality="bergen", programme="reintegration", opened_on=OPENED)
    t.assign("Voortraject", "dhg", OPENED)
    t.agree_plan(OPENED, ["Aanbodversterking"], "dhg")
    with pytest.raises(TrajectoryConflict) as refused:
        t.start_schooling(DAY, "required-qualification", "verzorgende", "dhg")
    assert refused.value.rule == "work-first"


# --- the end, and a new beginning ----------------------------------------------------------


def test_a_placement_ends_the_trajectory_with_everything_it_held():
    t = working()
    t.identify_obstacle(uuid.uuid4(), "debts", DAY, "Schuldhulpverlening", "agens")
    t.assign("Schuldhulpverlening", "dhg", DAY)
    t.waitlist("Verslavingszorg", DAY)
    t.place("Bakkerij De Korenschoof", 32, "permanent", dt.date(2008, 5, 1), "agens")
    placed_event = t.collect_events()[-1]
    assert isinstance(placed_event, Trajectory.Placed)
    assert placed_event.released == {LEAD: "agens", "Schuldhulpverlening": "dhg"}
    assert placed_event.withdrawn == ["Verslavingszorg"]
    assert placed_event.ended_contract == WNK
    assert t.state == "placed" and t.closing["reason"] == "placed"
    assert not t.assignments and not t.waiting
    assert t.reports_to("dhg", "Schuldhulpverlening") and not t.reports_to("inova", "Verslavingszorg")


def test_closing_with_reason_placed_is_refused_placement_is_its_own_report():
    with pytest.raises(InvalidFact) as invalid:
        active().close("placed", DAY, "agens")
    assert invalid.value.field == "reason"


def test_only_a_placed_trajectory_is_reopened_and_it_becomes_active():
    t = placed()
    t.reopen(dt.date(2008, 9, 1), "job-lost", "coaching")
    assert t.state == "active" and t.closing is None
    with pytest.raises(TrajectoryConflict) as refused:
        closed().reopen(DAY, "job-lost", "coaching")
    assert refused.value.state == "closed" and refused.value.allowed == []


def test_every_fact_names_its_municipality_and_who_recorded_it():
    t = working()
    facts = t.collect_events()[1:]
    assert {(f.municipality, f.by) for f in facts} == {("alkmaar", "desk"), ("alkmaar", "agens")}
