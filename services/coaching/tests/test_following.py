"""What coaching makes of the trajectory service's events: followed trajectories, the
aftercare provider, plans started by placements, and what it publishes in return."""

import datetime as dt
import json
import uuid

import pytest

from contracts.envelope import envelope, source_urn
from contracts.events import (
    CheckInRecorded, CoachChanged, CoachingStarted, Event, PlacedAgain, TrajectoryOpened,
    TrajectoryReopenRequested,
)
from contracts.service import Outcome
from coaching.application import CoachingApplication, UnknownTrajectory
from coaching.coaches import provider_slug
from coaching.domain import plan_id
from services.coaching.tests.support import Clock, Feed, Trajectory, kinds, published

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
STARTS = dt.date(2027, 1, 4)


@pytest.fixture
def clock():
    return Clock(STARTS)


@pytest.fixture
def app(clock):
    return CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)


def opened(municipality, n):
    data = TrajectoryOpened(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(),
                            client_id=uuid.uuid4(), municipality=municipality,
                            programme="focus2move", opened_on=dt.date(2026, 11, 1))
    return envelope(data, source=source_urn(municipality, "tweespoor-trajectory"),
                    origin=f"t/{n}/0", sequence=1, time=NOW)


def test_coaching_follows_each_opened_trajectory_once_per_municipality():
    app = CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    events = [opened("alkmaar", 1), opened("alkmaar", 2), opened("castricum", 3)]
    for offset, event in enumerate(events):
        assert app.apply(event, "t", 0, offset) is Outcome.APPLIED
    assert app.apply(events[0], "t", 0, 9) is Outcome.SEEN_EVENT
    assert app.followed_per_municipality() == {"alkmaar": 2, "castricum": 1}


@pytest.mark.parametrize("provider", ["agens", "Agens", "AGENS"])
def test_the_provider_holding_the_aftercare_becomes_the_coach(app, provider):
    trajectory = Trajectory("heerhugowaard")
    Feed(app)(trajectory.opened(), trajectory.assigned("dhg", discipline="Arbeidsritme"),
              trajectory.assigned(provider), trajectory.placed(STARTS))
    [started] = [e for e in published(app) if isinstance(e, CoachingStarted)]
    assert started.coach_id == "provider:agens"
    assert started.plan_id == plan_id(trajectory.id, 1)
    assert started.municipality == "heerhugowaard"


def test_without_an_aftercare_provider_the_municipality_coaches(app):
    trajectory = Trajectory("castricum")
    Feed(app)(trajectory.opened(), trajectory.assigned("dhg", discipline="Voortraject"),
              trajectory.placed(STARTS))
    [started] = [e for e in published(app) if isinstance(e, CoachingStarted)]
    assert started.coach_id == "municipality:castricum"


def test_an_aftercare_provider_assigned_after_the_start_takes_the_plan_over(app):
    trajectory = Trajectory("alkmaar")
    Feed(app)(trajectory.opened(), trajectory.placed(STARTS),
              trajectory.assigned("iwa-wurkympuls", on=dt.date(2027, 2, 1)))
    changed = published(app)[-1]
    assert isinstance(changed, CoachChanged)
    assert (changed.coach_id, changed.changed_on) == ("provider:iwa-wurkympuls", dt.date(2027, 2, 1))


def test_a_placement_redelivered_starts_one_plan(app):
    trajectory = Trajectory()
    placed = trajectory.placed(STARTS)
    feed = Feed(app)
    assert feed(trajectory.opened(), placed) == [Outcome.APPLIED, Outcome.APPLIED]
    assert app.apply(placed, "tweespoor.trajectory.events.v1", 0, 1) is Outcome.SEEN_OFFSET
    assert feed(placed) == [Outcome.SEEN_EVENT]
    assert kinds(published(app)) == ["CoachingStarted"]


def test_a_placement_within_the_year_continues_the_plan_and_one_after_it_starts_another(app, clock):
    trajectory = Trajectory()
    feed = Feed(app)
    feed(trajectory.opened(), trajectory.placed(STARTS))
    first = plan_id(trajectory.id, 1)
    clock.set(dt.date(2027, 4, 1))
    app.record_job_loss(first, lost_on=dt.date(2027, 3, 20), reason="dismissed")
    feed(trajectory.placed(STARTS))  # the first placement told again: nothing new
    feed(trajectory.placed(dt.date(2027, 4, 15), employer="Zorggroep Noord"))
    again = published(app)[-1]
    assert isinstance(again, PlacedAgain) and again.plan_id == first
    assert again.ends_on == dt.date(2028, 1, 4)

    clock.set(dt.date(2028, 3, 1))
    from coaching.scheduler import Scheduler
    Scheduler(app).run_once()
    feed(trajectory.placed(dt.date(2028, 3, 1), employer="Garage Duinzicht"))
    second = [e for e in published(app) if isinstance(e, CoachingStarted)][-1]
    assert second.plan_id == plan_id(trajectory.id, 2)
    assert [p["plan_id"] for p in app.plans(lambda s: True, trajectory_id=trajectory.id)] == [
        str(first), str(second.plan_id)]


def test_aftercare_on_a_trajectory_never_opened_is_an_error_for_the_dead_letters(app):
    trajectory = Trajectory()
    with pytest.raises(UnknownTrajectory):
        Feed(app)(trajectory.assigned("agens"))


def test_provider_names_become_the_slugs_credentials_use():
    assert provider_slug("Alexander Calder Reïntegratie") == "alexander-calder"
    assert provider_slug("nieuwland") == "nieuwland"
    assert provider_slug("Nieuw Bureau B.V.") == "nieuw-bureau-b-v"


def test_every_plan_event_translates_to_a_valid_catalogue_event_without_personal_data(app, clock):
    trajectory = Trajectory("bergen")
    Feed(app)(trajectory.opened(), trajectory.placed(STARTS))
    plan = plan_id(trajectory.id, 1)
    clock.set(dt.date(2027, 1, 20))
    app.record_check_in(plan, recorded_by="municipality:bergen", number=1, held_on=dt.date(2027, 1, 19),
                        contact_made=True, still_employed=True, hours_per_week=32,
                        issues_raised=("childcare", "childcare"), support=("childcare",),
                        next_step="extra-contact")
    app.request_reopen(plan, reason="obstacles-returned", requested_on=dt.date(2027, 1, 20),
                       requested_by="municipality:bergen")
    events = published(app)
    for event in events:
        assert isinstance(event, Event)
        type(event).model_validate(json.loads(event.model_dump_json()))  # round trip
        assert event.trajectory_id == trajectory.id
    check_in = next(e for e in events if isinstance(e, CheckInRecorded))
    assert check_in.issues_raised == ("childcare",) and check_in.recorded_by == "municipality:bergen"
    reopen = events[-1]
    assert isinstance(reopen, TrajectoryReopenRequested)
    assert (reopen.municipality, reopen.reason, reopen.employed) == ("bergen", "obstacles-returned", True)
    assert reopen.plan_id == plan and reopen.requested_by == "municipality:bergen"
