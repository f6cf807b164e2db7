import datetime as dt
import uuid

import pytest

from contracts.envelope import envelope, source_urn
from contracts.events import ClientReferred, TrajectoryOpened
from contracts.service import Outcome
from trajectory.application import TrajectoryApplication, integration_events

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
TOPIC = "tweespoor.intake.events.v1"


@pytest.fixture
def app():
    return TrajectoryApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"})


def client_referred(origin="referral/1/0"):
    data = ClientReferred(
        trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
        municipality="heiloo", programme="reintegration", benefit="anw",
        referred_on=dt.date(2026, 11, 1),
    )
    return envelope(data, source=source_urn("heiloo", "tweespoor-intake"), origin=origin,
                    sequence=1, time=NOW)


def test_a_referral_opens_a_trajectory_with_the_same_id(app):
    event = client_referred()
    assert app.apply(event, TOPIC, 0, 0) is Outcome.APPLIED
    trajectory = app.trajectory(event.data.trajectory_id)
    assert trajectory["state"] == "open"
    assert trajectory["municipality"] == "heiloo"


def test_the_same_record_delivered_again_is_recognised_by_its_offset(app):
    event = client_referred()
    app.apply(event, TOPIC, 0, 5)
    assert app.apply(event, TOPIC, 0, 5) is Outcome.SEEN_OFFSET
    assert app.trajectory(event.data.trajectory_id)["version"] == 1


def test_the_same_event_published_again_is_recognised_by_its_id(app):
    event = client_referred()
    app.apply(event, TOPIC, 0, 5)
    assert app.apply(event, TOPIC, 0, 6) is Outcome.SEEN_EVENT
    assert app.trajectory(event.data.trajectory_id)["version"] == 1


def test_offsets_are_tracked_per_partition(app):
    first, second = client_referred(), client_referred(origin="referral/2/0")
    assert app.apply(first, TOPIC, 0, 7) is Outcome.APPLIED
    assert app.apply(second, TOPIC, 1, 3) is Outcome.APPLIED
    assert app.position(TOPIC, 0) == 7 and app.position(TOPIC, 1) == 3


def test_events_it_does_not_consume_are_ignored_without_effect(app):
    referred = client_referred()
    opened = envelope(
        TrajectoryOpened(**referred.data.model_dump(include={"trajectory_id", "referral_id", "client_id", "municipality", "programme"}),
                         opened_on=dt.date(2026, 11, 1)),
        source=source_urn("heiloo", "tweespoor-trajectory"), origin="t/1/0", sequence=1, time=NOW)
    assert app.apply(opened, TOPIC, 0, 0) is Outcome.IGNORED
    assert app.recorder.max_notification_id() is None


def test_opening_translates_to_trajectory_opened(app):
    event = client_referred()
    app.apply(event, TOPIC, 0, 0)
    published = [
        e for n in app.recorder.select_notifications(None, 10)
        for _, e in integration_events(app.mapper.to_domain_event(n))
    ]
    assert [type(e) for e in published] == [TrajectoryOpened]
    assert published[0].trajectory_id == event.data.trajectory_id
