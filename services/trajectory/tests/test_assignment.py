"""The assignment desk on the in-memory store: providers assigned per discipline among
those contracted for the municipality and date, within capacity; waiting in order;
assigned when room frees; refused outside the contract period."""

import datetime as dt
import uuid

from contracts.access import Principal
from contracts.events import AssignmentRefused, AssignmentWaitlisted, ProviderAssigned
from services.trajectory.tests.conftest import INTAKE_TOPIC, new_app, refer, small_tender, withdrawn
from trajectory.usecases.desk import DESK
from trajectory.domain import Trajectory
from trajectory.integration import integration_events

D = dt.date(2007, 3, 1)


def assignments(app, trajectory_id):
    return {a["discipline"]: a["provider"] for a in app.trajectory(trajectory_id)["assignments"]}


def test_a_referral_gets_a_provider_for_its_programmes_first_discipline(app):
    trajectory_id = refer(app, programme="reintegration", municipality="bergen", referred_on=D)
    view = app.trajectory(trajectory_id)
    assert view["state"] == "assigned"
    assert assignments(app, trajectory_id) == {"Voortraject": "dhg"}  # DHG holds it for Bergen


def test_a_referral_outside_the_contract_period_is_refused(app):
    trajectory_id = refer(app, programme="reintegration", municipality="bergen",
                          referred_on=dt.date(2026, 11, 2))
    view = app.trajectory(trajectory_id)
    assert view["state"] == "not-contracted"
    assert view["refusals"] == {"Voortraject": "outside-contract-period"}
    assert view["allowed_next"] == ["closed"]


def test_focus2move_outside_alkmaar_is_refused_for_lack_of_a_contract(app):
    trajectory_id = refer(app, programme="focus2move", municipality="heiloo")
    assert app.trajectory(trajectory_id)["refusals"] == {
        "Directe bemiddeling en Nazorg": "no-contract-for-municipality"}


def test_the_plan_and_the_obstacles_ask_for_further_disciplines(app):
    trajectory_id = refer(app)  # Focus2Move, Alkmaar, February 2008
    trajectory: Trajectory = app.repository.get(trajectory_id)
    lead = trajectory.holder("Directe bemiddeling en Nazorg")
    trajectory.agree_plan(dt.date(2008, 2, 10), ["Maatschappelijk werk"], lead)
    trajectory.identify_obstacle(uuid.uuid4(), "addiction", dt.date(2008, 2, 12), "Verslavingszorg", lead)
    trajectory.identify_obstacle(uuid.uuid4(), "other", dt.date(2008, 2, 12), None, lead)
    app.save(trajectory)
    app.run_desk()
    assert assignments(app, trajectory_id) == {"Directe bemiddeling en Nazorg": lead,
                                               "Maatschappelijk werk": "alexander-calder",
                                               "Verslavingszorg": "inova"}


def test_capacity_runs_out_the_rest_wait_in_order_and_move_up_as_places_free(clock):
    app = new_app(clock, small_tender(places=1))
    first, second, third = (refer(app, programme="reintegration", referred_on=D + dt.timedelta(days=i))
                            for i in range(3))
    assert [app.trajectory(t)["state"] for t in (first, second, third)] == ["assigned", "waitlisted", "waitlisted"]
    assert app.capacity_view(_staff())[0] | {} == {"programme": "reintegration", "discipline": "Voortraject",
                                                  "places": 1, "in_use": 1, "waiting": 2}

    trajectory: Trajectory = app.repository.get(first)
    trajectory.agree_plan(D, [], "agens")
    trajectory.complete_discipline("Voortraject", dt.date(2007, 4, 2), "agens")
    app.save(trajectory)
    app.run_desk()
    assert app.trajectory(second)["state"] == "assigned"
    assert app.trajectory(second)["assignments"][0]["since"] == "2007-04-02"
    assert app.trajectory(third)["state"] == "waitlisted"

    app.apply(withdrawn(second, on=dt.date(2007, 5, 1)), INTAKE_TOPIC, 0, 10_000)  # closing frees too
    app.run_desk()
    assert app.trajectory(third)["state"] == "assigned"


def test_a_closed_waiting_trajectory_leaves_the_waitlist(clock):
    app = new_app(clock, small_tender(places=1))
    holder = refer(app, programme="reintegration", referred_on=D)
    waiting = refer(app, programme="reintegration", referred_on=D)
    app.apply(withdrawn(waiting, on=D), INTAKE_TOPIC, 0, 20_000)
    app.run_desk()
    assert app.capacity("reintegration", "Voortraject").waiting == []
    assert app.trajectory(holder)["state"] == "assigned"


def test_more_places_let_waiting_trajectories_in(clock):
    app = new_app(clock, small_tender(places=1))
    refer(app, programme="reintegration", referred_on=D)
    waiting = refer(app, programme="reintegration", referred_on=D)
    [contract] = [c for c in app.contracts_view(_staff()) if c["discipline"] == "Voortraject"]
    app.change_places(uuid.UUID(contract["contract_id"]), places=2, on=dt.date(2007, 3, 5),
                      reason="demand in Alkmaar", by="region-contract-manager")
    app.run_desk()
    assert app.trajectory(waiting)["assignments"][0] == {"discipline": "Voortraject", "provider": "agens",
                                                          "since": "2007-03-05"}


def test_a_new_contract_takes_on_waiting_trajectories(clock):
    app = new_app(clock, small_tender(places=1))
    refer(app, programme="reintegration", referred_on=D)
    waiting = refer(app, programme="reintegration", referred_on=D)
    app.award_contract(provider="dhg", programme="reintegration", discipline="Voortraject",
                       municipalities=["alkmaar"], starts_on=dt.date(2007, 4, 1),
                       ends_on=dt.date(2008, 4, 30), places=3, tariff_eur=1400,
                       reason="second lot", by="region-contract-manager")
    app.run_desk()
    assert assignments(app, waiting) == {"Voortraject": "dhg"}
    assert app.trajectory(waiting)["assignments"][0]["since"] == "2007-04-01"


def test_when_the_period_has_ended_a_waiting_trajectory_is_refused_not_assigned(clock):
    app = new_app(clock, small_tender(places=1))
    holder = refer(app, programme="reintegration", referred_on=dt.date(2008, 4, 1))
    waiting = refer(app, programme="reintegration", referred_on=dt.date(2008, 4, 2))
    app.apply(withdrawn(holder, on=dt.date(2008, 5, 15)), INTAKE_TOPIC, 0, 30_000)
    app.run_desk()
    view = app.trajectory(waiting)
    assert view["state"] == "not-contracted" and view["refusals"] == {"Voortraject": "outside-contract-period"}


def test_the_desk_decides_each_fact_once_however_often_it_runs(clock):
    app = new_app(clock, small_tender(places=1))
    refer(app, programme="reintegration", referred_on=D)
    refer(app, programme="reintegration", referred_on=D)
    while app.run_desk():  # it reads its own decisions back, and finds nothing in them to do
        pass
    before = app.recorder.max_notification_id()
    assert app.recorder.max_tracking_id(DESK) == before
    assert app.run_desk() == 0
    assert app.recorder.max_notification_id() == before


def test_assignment_decisions_are_published_as_integration_events(clock):
    app = new_app(clock, small_tender(places=1))
    start = app.recorder.max_notification_id()
    refer(app, programme="reintegration", referred_on=D)
    refer(app, programme="reintegration", referred_on=D)
    refer(app, programme="reintegration", municipality="bergen", referred_on=D)
    kinds = [type(e) for n in app.recorder.select_notifications(start, 100, inclusive_of_start=False)
             for _, e in integration_events(app.mapper.to_domain_event(n))]
    assert [k for k in kinds if k in (ProviderAssigned, AssignmentWaitlisted, AssignmentRefused)] == [
        ProviderAssigned, AssignmentWaitlisted, AssignmentRefused]


def test_the_budget_counts_what_assignments_commit(clock):
    app = new_app(clock, small_tender(places=5))
    refer(app, programme="reintegration", referred_on=D)
    refer(app, programme="reintegration", municipality="heiloo", referred_on=D)
    [budget] = app.programmes_view()["budgets"]
    assert budget["committed_eur"] == 2000
    assert budget["committed_per_municipality_eur"] == {"alkmaar": 1000, "heiloo": 1000}


def test_the_tender_is_seeded_once_a_later_start_keeps_the_stores_version(clock):
    app = new_app(clock, small_tender(places=1))
    assert not app.seed(small_tender(places=50))
    assert app.contracts_view(_staff())[0]["places"] == 1


def _staff():
    return Principal("staff", "staff", frozenset({"reports:read"}))
